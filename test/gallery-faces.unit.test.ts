// The gallery keeps enrolment faces with the person (and drops them with the person), and swaps a model's embeddings whole.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { IdentityGallery, gallerySchemaVersion } from '../src/server/gallery/store.js';

const A = { name: 'faceres', version: '1' };
const B = { name: 'facerec', version: '1' };
const png = (n: number): Uint8Array => Uint8Array.from([0x89, 0x50, 0x4e, 0x47, n]);

let gallery: IdentityGallery | undefined;
afterEach(() => gallery?.close());

describe('enrolment faces', () => {
  it('are kept per person, oldest first, and deleted with the person', () => {
    gallery = IdentityGallery.open({ path: ':memory:' });
    const ada = gallery.enrol('Ada', [[1, 0, 0]], A, 'ada');
    const bob = gallery.enrol('Bob', [[0, 1, 0]], A, 'bob');
    expect(gallery.addFaces(ada, [png(1), png(2)], 'png-aligned-224-p0.6')).toBe(2);
    expect(gallery.addFaces(bob, [png(3)], 'png-aligned-224-p0.6')).toBe(1);
    expect(gallery.faces(ada).map((f) => [...f.image])).toEqual([[...png(1)], [...png(2)]]);
    expect(gallery.faces().map((f) => f.personId)).toEqual(['ada', 'ada', 'bob']);
    gallery.delete(ada);
    // Biometric crops leave with the person.
    expect(gallery.faces().map((f) => f.personId)).toEqual(['bob']);
    expect(() => gallery!.addFaces('nobody', [png(4)], 'png')).toThrow(/no enrolled person/);
  });

  it("replaces one model's embeddings in one go and leaves the other model's", () => {
    gallery = IdentityGallery.open({ path: ':memory:' });
    gallery.enrol('Ada', [[1, 0, 0]], A, 'ada');
    gallery.enrol('Bob', [[0, 1, 0]], A, 'bob');
    const written = gallery.replaceModelEmbeddings(
      B,
      new Map([
        [
          'ada',
          [
            [0, 0, 1, 0],
            [0, 0, 0.9, 0.1],
          ],
        ],
        ['bob', [[1, 0, 0, 0]]],
      ]),
    );
    expect(written).toBe(3);
    expect(gallery.dims(B)).toBe(4);
    expect(gallery.identify([0, 0, 1, 0], 0.9, B)).toMatchObject({ known: true, personId: 'ada' });
    expect(gallery.identify([1, 0, 0], 0.9, A)).toMatchObject({ known: true, personId: 'ada' });
    // Again: the old B embeddings are gone, not added to.
    gallery.replaceModelEmbeddings(B, new Map([['bob', [[0, 0, 1, 0]]]]));
    expect(gallery.list(B).map((p) => [p.id, p.embeddingCount])).toEqual([['bob', 1]]);
    expect(gallery.identify([0, 0, 1, 0], 0.9, B)).toMatchObject({ known: true, personId: 'bob' });
    // Mixed sizes are refused and nothing changes.
    expect(() =>
      gallery!.replaceModelEmbeddings(
        B,
        new Map([
          ['ada', [[1, 0]]],
          ['bob', [[1, 0, 0]]],
        ]),
      ),
    ).toThrow(/2 and 3 dims/);
    expect(gallery.list(B).map((p) => p.id)).toEqual(['bob']);
  });
});

describe('schema migration', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('adds the faces table to a gallery of schema 1 and keeps its people', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kt-gallery-v1-'));
    const path = join(dir, 'old.db');
    const raw = new Database(path);
    raw.exec(`CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_ms INTEGER NOT NULL);
      CREATE TABLE embeddings (id INTEGER PRIMARY KEY, person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        model_name TEXT NOT NULL, model_version TEXT NOT NULL, dims INTEGER NOT NULL, vector BLOB NOT NULL, created_ms INTEGER NOT NULL);
      INSERT INTO people VALUES ('ada', 'Ada', 1);`);
    raw.pragma('user_version = 1');
    raw.close();
    gallery = IdentityGallery.open({ path });
    expect(gallerySchemaVersion).toBe(2);
    expect(gallery.list().map((p) => p.name)).toEqual(['Ada']);
    expect(gallery.faces('ada')).toEqual([]);
    expect(gallery.addFaces('ada', [png(9)], 'png')).toBe(1);
  });
});
