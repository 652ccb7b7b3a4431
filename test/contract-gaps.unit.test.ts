// Pure rules behind the contract-gap fixes: reserved stream ids, person names and ids, and paths kept out of error details.
import { describe, expect, it } from 'vitest';
import { InvalidInputError, NotFoundError } from '../src/core/errors.js';
import { checkStreamId, isStreamId, reservedStreamIds } from '../src/contract/stream-id.js';
import { checkPersonId, maxPersonNameLength, normalisePersonName } from '../src/server/gallery/person-name.js';
import { redactPaths, toGrpcStatus } from '../src/server/status.js';

describe('reserved stream ids', () => {
  it('rejects unary, . and .. with a message saying they are reserved', () => {
    expect(reservedStreamIds).toEqual(['unary', '.', '..']);
    for (const id of reservedStreamIds) {
      expect(isStreamId(id)).toBe(false);
      expect(() => checkStreamId(id, 'stream_id')).toThrow(/reserved/);
    }
    expect(isStreamId('unary-2')).toBe(true);
    expect(isStreamId('...')).toBe(true);
  });
});

describe('person names', () => {
  it('removes control, bidi and markup characters, collapses white space, keeps letters of every script and emoji', () => {
    expect(normalisePersonName('  Ada\tLovelace \n')).toBe('Ada Lovelace');
    expect(normalisePersonName('\u202eevil\u202c\u0000 \u2067name\u2069')).toBe('evil name');
    expect(normalisePersonName('<script>x</script>')).toBe('scriptx/script');
    expect(normalisePersonName('Zoë Ørsted 李雷 👩\u200d💻')).toBe('Zoë Ørsted 李雷 👩\u200d💻');
    // NFC: a decomposed e + combining acute is stored as one code point.
    expect(normalisePersonName('Jose\u0301')).toBe('Jos\u00e9');
  });

  it('rejects names empty after cleaning and names over the limit', () => {
    for (const bad of ['', '   ', '\u0000\u202e', 7]) expect(() => normalisePersonName(bad)).toThrow(InvalidInputError);
    expect(normalisePersonName('n'.repeat(maxPersonNameLength))).toHaveLength(maxPersonNameLength);
    expect(() => normalisePersonName('n'.repeat(maxPersonNameLength + 1))).toThrow(/limited to 128/);
  });

  it('accepts safe person ids only', () => {
    for (const id of ['staff-0042', 'a', 'user@site', 'x:y.z_1', 'f'.repeat(128)]) expect(checkPersonId(id)).toBe(id);
    for (const id of ['', 'a b', 'a/b', 'nul\u0000', 'ü', 'f'.repeat(129), 3]) expect(() => checkPersonId(id)).toThrow(InvalidInputError);
  });
});

describe('paths in error details', () => {
  it('keeps only the last segments of absolute paths', () => {
    expect(redactPaths('model.json at /srv/kt/model-repository/faceres/1/model.json is bad')).toBe(
      'model.json at …/faceres/1/model.json is bad',
    );
    expect(redactPaths("ENOENT: open '/home/op/models/x.onnx'")).toBe("ENOENT: open '…/op/models/x.onnx'");
    expect(redactPaths('image/jpeg 3/4 width/height')).toBe('image/jpeg 3/4 width/height');
    expect(toGrpcStatus(new NotFoundError('no file (/var/lib/kt/secret/dir/f)')).details).toBe('no file (…/secret/dir/f)');
    expect(toGrpcStatus(new Error('boom at /opt/a/b/c/d')).details).toBe('internal error: boom at …/b/c/d');
  });
});
