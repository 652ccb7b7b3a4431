// Identity gallery against real SQLite files: enrol, identify, thresholds, delete, persistence, model isolation, errors.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidInputError, KtError, NotFoundError } from '../src/core/errors.js';
import { IdentityGallery, gallerySchemaVersion } from '../src/server/gallery/store.js';

const arcface = { name: 'faceres', version: '1' };
const dims = 64;

/** Deterministic pseudo-random unit-ish vectors, so failures reproduce. */
function vector(seed: number, n = dims): Float32Array {
  let state = seed * 2654435761 + 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    out[i] = state / 2147483648 - 0.5;
  }
  return out;
}

/** `base` plus a little noise: another view of the same face. */
function near(base: Float32Array, seed: number, amount = 0.05): Float32Array {
  const noise = vector(seed, base.length);
  return base.map((v, i) => v + amount * (noise[i] as number));
}

describe('identity gallery', () => {
  let dir: string;
  let gallery: IdentityGallery;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kt-gallery-'));
    gallery = IdentityGallery.open({ path: join(dir, 'gallery.db') });
  });
  afterEach(() => {
    gallery.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('enrols people and identifies them by cosine similarity, invariant to scale', () => {
    const alice = vector(1);
    const bob = vector(2);
    const aliceId = gallery.enrol('Alice', [alice, near(alice, 11)], arcface);
    const bobId = gallery.enrol('Bob', [Array.from(bob)], arcface);
    expect(aliceId).not.toBe(bobId);

    const hit = gallery.identify(
      near(alice, 12).map((v) => v * 37),
      0.8,
      arcface,
    );
    expect(hit.known).toBe(true);
    if (!hit.known) return;
    expect(hit).toMatchObject({ personId: aliceId, name: 'Alice' });
    expect(hit.similarity).toBeGreaterThan(0.95);
    expect(hit.similarity).toBeLessThanOrEqual(1);

    const exact = gallery.identify(bob, 0.99, arcface);
    expect(exact).toMatchObject({ known: true, personId: bobId, name: 'Bob' });
    if (exact.known) expect(exact.similarity).toBeCloseTo(1, 5);

    expect(gallery.list().map((p) => [p.name, p.embeddingCount])).toEqual([
      ['Alice', 2],
      ['Bob', 1],
    ]);
    expect(gallery.get(aliceId)?.name).toBe('Alice');
    expect(gallery.dims(arcface)).toBe(dims);
  });

  it('answers unknown below the threshold, with the nearest person for diagnostics', () => {
    const aliceId = gallery.enrol('Alice', [vector(1)], arcface);
    const stranger = vector(99);
    const result = gallery.identify(stranger, 0.5, arcface);
    expect(result.known).toBe(false);
    if (result.known) return;
    expect(result.nearest?.personId).toBe(aliceId);
    expect(result.nearest?.similarity).toBeLessThan(0.5);
    // The same query is a match once the threshold is below its similarity.
    const lenient = gallery.identify(stranger, Math.max(-1, (result.nearest?.similarity ?? 0) - 0.01), arcface);
    expect(lenient.known).toBe(true);
  });

  it('answers unknown with no nearest person when nothing of the model is enrolled', () => {
    expect(gallery.identify(vector(1), 0.5, arcface)).toEqual({ known: false, nearest: null });
  });

  it('deletes a person with their embeddings and stops matching them (cache invalidated)', () => {
    const alice = vector(1);
    const aliceId = gallery.enrol('Alice', [alice], arcface);
    const bobId = gallery.enrol('Bob', [vector(2)], arcface);
    expect(gallery.identify(alice, 0.9, arcface)).toMatchObject({ known: true, personId: aliceId });
    gallery.delete(aliceId);
    expect(gallery.list().map((p) => p.id)).toEqual([bobId]);
    expect(gallery.get(aliceId)).toBeUndefined();
    const after = gallery.identify(alice, 0.9, arcface);
    expect(after.known).toBe(false);
    if (!after.known) expect(after.nearest?.personId).toBe(bobId);
    expect(() => gallery.delete(aliceId)).toThrow(NotFoundError);
  });

  it('sees a new enrolment on the next identify (cache invalidated)', () => {
    gallery.enrol('Alice', [vector(1)], arcface);
    const carol = vector(3);
    expect(gallery.identify(carol, 0.9, arcface).known).toBe(false);
    const carolId = gallery.enrol('Carol', [carol], arcface);
    expect(gallery.identify(carol, 0.9, arcface)).toMatchObject({ known: true, personId: carolId });
    expect(gallery.addEmbeddings(carolId, [near(carol, 5)], arcface)).toBe(2);
  });

  it('persists across closing and reopening the same file', () => {
    const path = join(dir, 'persist.db');
    const first = IdentityGallery.open({ path });
    const alice = vector(1);
    const aliceId = first.enrol('Alice', [alice, near(alice, 2)], arcface);
    first.close();

    const second = IdentityGallery.open({ path });
    try {
      expect(second.list()).toEqual([expect.objectContaining({ id: aliceId, name: 'Alice', embeddingCount: 2 })]);
      expect(second.identify(alice, 0.9, arcface)).toMatchObject({ known: true, personId: aliceId, name: 'Alice' });
    } finally {
      second.close();
    }
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.pragma('user_version', { simple: true })).toBe(gallerySchemaVersion);
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  it('never mixes embeddings of different model versions', () => {
    const v2 = { name: 'faceres', version: '2' };
    const other = { name: 'facenet', version: '1' };
    const alice = vector(1);
    const aliceId = gallery.enrol('Alice', [alice], arcface);
    expect(gallery.identify(alice, 0.5, v2)).toEqual({ known: false, nearest: null });
    expect(gallery.identify(alice, 0.5, other)).toEqual({ known: false, nearest: null });

    // Another version may even have another size.
    const bobV2 = vector(2, 128);
    const bobId = gallery.enrol('Bob', [bobV2], v2);
    expect(gallery.identify(bobV2, 0.9, v2)).toMatchObject({ known: true, personId: bobId });
    expect(gallery.identify(alice, 0.9, arcface)).toMatchObject({ known: true, personId: aliceId });
    expect(gallery.list(v2).map((p) => p.id)).toEqual([bobId]);
    expect(gallery.list(arcface).map((p) => p.id)).toEqual([aliceId]);

    // Re-enrolling Alice under v2 makes her identifiable there too.
    gallery.addEmbeddings(aliceId, [vector(1, 128)], v2);
    expect(gallery.identify(vector(1, 128), 0.9, v2)).toMatchObject({ known: true, personId: aliceId });
  });

  it('works in memory', () => {
    const memory = IdentityGallery.open({ path: ':memory:' });
    try {
      const id = memory.enrol('Dana', [vector(4)], arcface);
      expect(memory.identify(vector(4), 0.9, arcface)).toMatchObject({ known: true, personId: id });
    } finally {
      memory.close();
    }
  });

  it('rejects bad input with typed errors', () => {
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (e) {
        return e instanceof KtError ? `${e.name}:${e.code}` : `untyped:${String(e)}`;
      }
      return undefined;
    };
    const invalid = 'InvalidInputError:INVALID_ARGUMENT';
    expect(code(() => gallery.enrol('Nobody', [], arcface))).toBe(invalid);
    expect(code(() => gallery.enrol('', [vector(1)], arcface))).toBe(invalid);
    expect(code(() => gallery.enrol('Mixed', [vector(1), vector(2, 32)], arcface))).toBe(invalid);
    expect(code(() => gallery.enrol('Zero', [new Float32Array(dims)], arcface))).toBe(invalid);
    expect(code(() => gallery.enrol('NaN', [[1, Number.NaN, 0]], arcface))).toBe(invalid);
    expect(code(() => gallery.enrol('NoModel', [vector(1)], { name: '', version: '1' }))).toBe(invalid);
    gallery.enrol('Alice', [vector(1)], arcface);
    // Once a model has embeddings, its size is fixed.
    expect(code(() => gallery.enrol('Wide', [vector(5, dims * 2)], arcface))).toBe(invalid);
    expect(code(() => gallery.identify(vector(1, dims * 2), 0.5, arcface))).toBe(invalid);
    expect(code(() => gallery.identify(vector(1), 1.5, arcface))).toBe(invalid);
    expect(code(() => gallery.identify(vector(1), Number.NaN, arcface))).toBe(invalid);
    expect(code(() => gallery.delete('no-such-person'))).toBe('NotFoundError:NOT_FOUND');
    expect(code(() => gallery.addEmbeddings('no-such-person', [vector(1)], arcface))).toBe('NotFoundError:NOT_FOUND');
    expect(code(() => IdentityGallery.open({ path: '' }))).toBe(invalid);
    expect(gallery.list()).toHaveLength(1);
    expect(() => gallery.enrol('Nobody', [], arcface)).toThrow(InvalidInputError);
  });

  it('refuses a database from a newer schema version', () => {
    const path = join(dir, 'future.db');
    const raw = new Database(path);
    raw.pragma(`user_version = ${gallerySchemaVersion + 1}`);
    raw.close();
    expect(() => IdentityGallery.open({ path })).toThrow(/newer than this build supports/);
  });
});
