// Identity gallery: enrolled people and their face embeddings in SQLite, matched by cosine similarity per model version.
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { AlreadyExistsError, FailedPreconditionError, InvalidInputError, NotFoundError } from '../../core/errors.js';
import { checkModel, fromBlob, l2Normalised, modelKey, toBlob } from './embedding.js';
import type { EmbeddingInput, EmbeddingModel } from './embedding.js';
import { checkPersonId, normalisePersonName } from './person-name.js';

export interface GalleryOptions {
  /** SQLite file, created when missing; `:memory:` for a throw-away gallery. Required: losing enrolments silently is worse than asking. */
  path: string;
  /** How long a write waits for another connection's lock, in milliseconds. Default 5000. */
  busyTimeoutMs?: number;
}

export interface Person {
  id: string;
  name: string;
  /** Milliseconds since the Unix epoch. */
  createdMs: number;
  /** Embeddings stored for this person: of the model asked about in `list(model)`, else of every model. */
  embeddingCount: number;
}

/** An enrolment face crop as stored: encoded image bytes (`format` e.g. "png-aligned-v1"). */
export interface StoredFace {
  id: number;
  personId: string;
  format: string;
  image: Buffer;
  createdMs: number;
}

export interface IdentifyMatch {
  personId: string;
  name: string;
  /** Cosine similarity in [-1, 1] of the query and the person's closest embedding. */
  similarity: number;
}

/** `known` when the best similarity reaches the threshold; otherwise the nearest person, if any, for diagnostics. */
export type IdentifyResult = ({ known: true } & IdentifyMatch) | { known: false; nearest: IdentifyMatch | null };

/** Schema migrations; index i brings the database from user_version i to i + 1. */
const migrations: readonly string[] = [
  `CREATE TABLE people (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     created_ms INTEGER NOT NULL
   );
   CREATE TABLE embeddings (
     id INTEGER PRIMARY KEY,
     person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     dims INTEGER NOT NULL,
     vector BLOB NOT NULL,
     created_ms INTEGER NOT NULL
   );
   CREATE INDEX embeddings_by_model ON embeddings(model_name, model_version);
   CREATE INDEX embeddings_by_person ON embeddings(person_id);`,
  // 2: the enrolment face crops (see enrolment-face.ts), so that `kt gallery reembed` can move to another model.
  `CREATE TABLE faces (
     id INTEGER PRIMARY KEY,
     person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
     format TEXT NOT NULL,
     image BLOB NOT NULL,
     created_ms INTEGER NOT NULL
   );
   CREATE INDEX faces_by_person ON faces(person_id);`,
];
export const gallerySchemaVersion = migrations.length;

/** Every embedding of one model as one row-major matrix, rebuilt on the first identify after a change. */
interface ModelMatrix {
  dims: number;
  rows: number;
  matrix: Float32Array;
  rowPersonIds: string[];
  rowNames: string[];
}

export class IdentityGallery {
  private readonly db: Database.Database;
  private readonly matrices = new Map<string, ModelMatrix>();

  private constructor(db: Database.Database) {
    this.db = db;
  }

  /** Opens (creating or migrating) the gallery database. */
  static open(options: GalleryOptions): IdentityGallery {
    if (typeof options?.path !== 'string' || options.path === '')
      throw new InvalidInputError('gallery path is required (use ":memory:" for a temporary gallery)');
    const db = new Database(options.path);
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      db.pragma('journal_mode = WAL'); // an in-memory database stays in 'memory' mode, which is fine
      db.pragma('foreign_keys = ON');
      migrate(db, options.path);
    } catch (e) {
      db.close();
      throw e;
    }
    return new IdentityGallery(db);
  }

  /**
   * Stores a new person with at least one embedding of `model`; returns the person id: `personId` when given (it
   * must be free: InvalidInputError otherwise), else a new UUID. The name is normalised (normalisePersonName).
   */
  enrol(name: string, embeddings: readonly EmbeddingInput[], model: EmbeddingModel, personId?: string): string {
    const cleanName = normalisePersonName(name);
    const vectors = this.checkEmbeddings(embeddings, model);
    const id = personId === undefined ? randomUUID() : checkPersonId(personId);
    if (personId !== undefined && this.get(id) !== undefined) throw new AlreadyExistsError(`person_id "${id}" is already enrolled`);
    const now = Date.now();
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO people (id, name, created_ms) VALUES (?, ?, ?)').run(id, cleanName, now);
      this.insertEmbeddings(id, vectors, model, now);
    })();
    this.matrices.delete(modelKey(model));
    return id;
  }

  /** Adds embeddings to an enrolled person (more views, or a new model version); returns how many the person now has for `model`. */
  addEmbeddings(personId: string, embeddings: readonly EmbeddingInput[], model: EmbeddingModel): number {
    const vectors = this.checkEmbeddings(embeddings, model);
    const count = this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM people WHERE id = ?').get(personId) === undefined)
        throw new NotFoundError(`no enrolled person with id "${personId}"`);
      this.insertEmbeddings(personId, vectors, model, Date.now());
      const row = this.db
        .prepare('SELECT COUNT(*) AS n FROM embeddings WHERE person_id = ? AND model_name = ? AND model_version = ?')
        .get(personId, model.name, model.version) as { n: number };
      return row.n;
    })();
    this.matrices.delete(modelKey(model));
    return count;
  }

  /**
   * Keeps enrolment face crops of a person (encoded images; see enrolment-face.ts). They are biometric data: they
   * leave with the person (delete cascades) and let `reembed` compute embeddings of another model without the person.
   */
  addFaces(personId: string, images: readonly Uint8Array[], format: string): number {
    const insert = this.db.prepare('INSERT INTO faces (person_id, format, image, created_ms) VALUES (?, ?, ?, ?)');
    return this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM people WHERE id = ?').get(personId) === undefined)
        throw new NotFoundError(`no enrolled person with id "${personId}"`);
      const now = Date.now();
      for (const image of images) insert.run(personId, format, Buffer.from(image), now);
      return (this.db.prepare('SELECT COUNT(*) AS n FROM faces WHERE person_id = ?').get(personId) as { n: number }).n;
    })();
  }

  /** The stored enrolment faces, oldest first; of one person when `personId` is given. */
  faces(personId?: string): StoredFace[] {
    type Row = { id: number; person_id: string; format: string; image: Buffer; created_ms: number };
    const rows = (
      personId === undefined
        ? this.db.prepare('SELECT id, person_id, format, image, created_ms FROM faces ORDER BY id').all()
        : this.db.prepare('SELECT id, person_id, format, image, created_ms FROM faces WHERE person_id = ? ORDER BY id').all(personId)
    ) as Row[];
    return rows.map((r) => ({ id: r.id, personId: r.person_id, format: r.format, image: r.image, createdMs: r.created_ms }));
  }

  /**
   * Replaces every embedding of `model` (name and version) by `byPerson`'s vectors, in one transaction: a re-embed
   * either lands whole or not at all. People missing from `byPerson` lose their embeddings of `model`.
   */
  replaceModelEmbeddings(model: EmbeddingModel, byPerson: ReadonlyMap<string, readonly EmbeddingInput[]>): number {
    checkModel(model);
    const checked = [...byPerson].map(([id, vectors]) => [id, vectors.map((v, i) => l2Normalised(v, `embedding ${i} of ${id}`))] as const);
    const dims = new Set(checked.flatMap(([, vs]) => vs.map((v) => v.length)));
    if (dims.size > 1) throw new InvalidInputError(`re-embedding ${modelKey(model)}: vectors of ${[...dims].join(' and ')} dims`);
    let written = 0;
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM embeddings WHERE model_name = ? AND model_version = ?').run(model.name, model.version);
      const now = Date.now();
      for (const [id, vectors] of checked) {
        if (this.db.prepare('SELECT 1 FROM people WHERE id = ?').get(id) === undefined) continue;
        this.insertEmbeddings(id, vectors, model, now);
        written += vectors.length;
      }
    })();
    this.matrices.delete(modelKey(model));
    return written;
  }

  /** Renames an enrolled person (the name normalised as on enrolment); NotFoundError when there is no such person. */
  rename(personId: string, name: string): void {
    const result = this.db.prepare('UPDATE people SET name = ? WHERE id = ?').run(normalisePersonName(name), personId);
    if (result.changes === 0) throw new NotFoundError(`no enrolled person with id "${personId}"`);
    this.matrices.clear();
  }

  /** Everyone enrolled, oldest first; with `model`, only people who have embeddings of that model. */
  list(model?: EmbeddingModel): Person[] {
    type Row = { id: string; name: string; created_ms: number; n: number };
    let rows: Row[];
    if (model === undefined) {
      rows = this.db
        .prepare(
          'SELECT p.id, p.name, p.created_ms, COUNT(e.id) AS n FROM people p LEFT JOIN embeddings e ON e.person_id = p.id GROUP BY p.id ORDER BY p.created_ms, p.rowid',
        )
        .all() as Row[];
    } else {
      checkModel(model);
      rows = this.db
        .prepare(
          'SELECT p.id, p.name, p.created_ms, COUNT(e.id) AS n FROM people p JOIN embeddings e ON e.person_id = p.id WHERE e.model_name = ? AND e.model_version = ? GROUP BY p.id ORDER BY p.created_ms, p.rowid',
        )
        .all(model.name, model.version) as Row[];
    }
    return rows.map((r) => ({ id: r.id, name: r.name, createdMs: r.created_ms, embeddingCount: r.n }));
  }

  get(personId: string): Person | undefined {
    const row = this.db
      .prepare(
        'SELECT p.id, p.name, p.created_ms, COUNT(e.id) AS n FROM people p LEFT JOIN embeddings e ON e.person_id = p.id WHERE p.id = ? GROUP BY p.id',
      )
      .get(personId) as { id: string; name: string; created_ms: number; n: number } | undefined;
    return row === undefined ? undefined : { id: row.id, name: row.name, createdMs: row.created_ms, embeddingCount: row.n };
  }

  /** Removes a person and all their embeddings; NotFoundError when there is no such person. */
  delete(personId: string): void {
    const result = this.db.prepare('DELETE FROM people WHERE id = ?').run(personId);
    if (result.changes === 0) throw new NotFoundError(`no enrolled person with id "${personId}"`);
    this.matrices.clear();
  }

  /** Embedding size stored for `model`, or undefined when nothing of it is enrolled. */
  dims(model: EmbeddingModel): number | undefined {
    checkModel(model);
    const row = this.db
      .prepare('SELECT dims FROM embeddings WHERE model_name = ? AND model_version = ? LIMIT 1')
      .get(model.name, model.version) as { dims: number } | undefined;
    return row?.dims;
  }

  /**
   * Best match among embeddings of the same model name and version, by cosine similarity (both sides
   * L2-normalised). `threshold` is a cosine similarity in [-1, 1].
   */
  identify(embedding: EmbeddingInput, threshold: number, model: EmbeddingModel): IdentifyResult {
    checkModel(model);
    if (typeof threshold !== 'number' || !(threshold >= -1 && threshold <= 1)) {
      throw new InvalidInputError(`identify threshold must be a cosine similarity in [-1, 1], got ${String(threshold)}`);
    }
    const query = l2Normalised(embedding, 'query embedding');
    const cached = this.matrix(model);
    if (cached === undefined || cached.rows === 0) return { known: false, nearest: null };
    if (query.length !== cached.dims) {
      throw new InvalidInputError(`query embedding has ${query.length} dims, but ${modelKey(model)} embeddings have ${cached.dims}`);
    }
    const { matrix, dims, rows } = cached;
    let bestRow = 0;
    let bestSimilarity = -Infinity;
    for (let r = 0; r < rows; r++) {
      const offset = r * dims;
      let dot = 0;
      for (let d = 0; d < dims; d++) dot += (matrix[offset + d] as number) * (query[d] as number);
      if (dot > bestSimilarity) {
        bestSimilarity = dot;
        bestRow = r;
      }
    }
    const match: IdentifyMatch = {
      personId: cached.rowPersonIds[bestRow] as string,
      name: cached.rowNames[bestRow] as string,
      // Float rounding can put identical vectors a hair above 1.
      similarity: Math.max(-1, Math.min(1, bestSimilarity)),
    };
    return match.similarity >= threshold ? { known: true, ...match } : { known: false, nearest: match };
  }

  close(): void {
    this.matrices.clear();
    if (this.db.open) this.db.close();
  }

  private matrix(model: EmbeddingModel): ModelMatrix | undefined {
    const key = modelKey(model);
    const hit = this.matrices.get(key);
    if (hit !== undefined) return hit;
    const rows = this.db
      .prepare(
        'SELECT e.person_id, p.name, e.dims, e.vector FROM embeddings e JOIN people p ON p.id = e.person_id WHERE e.model_name = ? AND e.model_version = ? ORDER BY e.id',
      )
      .all(model.name, model.version) as { person_id: string; name: string; dims: number; vector: Buffer }[];
    if (rows.length === 0) return undefined;
    const dims = rows[0]!.dims;
    const matrix = new Float32Array(rows.length * dims);
    const rowPersonIds: string[] = [];
    const rowNames: string[] = [];
    rows.forEach((row, r) => {
      // Stored vectors are already normalised; enrolment enforced one dims per model.
      matrix.set(fromBlob(row.vector, dims), r * dims);
      rowPersonIds.push(row.person_id);
      rowNames.push(row.name);
    });
    const built: ModelMatrix = { dims, rows: rows.length, matrix, rowPersonIds, rowNames };
    this.matrices.set(key, built);
    return built;
  }

  private checkEmbeddings(embeddings: readonly EmbeddingInput[], model: EmbeddingModel): Float32Array[] {
    checkModel(model);
    if (!Array.isArray(embeddings) || embeddings.length === 0) throw new InvalidInputError('enrolment needs at least one embedding');
    const vectors = embeddings.map((e, i) => l2Normalised(e, `embedding ${i}`));
    const expected = this.dims(model) ?? vectors[0]!.length;
    vectors.forEach((v, i) => {
      if (v.length !== expected)
        throw new InvalidInputError(`embedding ${i} has ${v.length} dims, but ${modelKey(model)} embeddings have ${expected}`);
    });
    return vectors;
  }

  private insertEmbeddings(personId: string, vectors: Float32Array[], model: EmbeddingModel, now: number): void {
    const insert = this.db.prepare(
      'INSERT INTO embeddings (person_id, model_name, model_version, dims, vector, created_ms) VALUES (?, ?, ?, ?, ?, ?)',
    );
    for (const v of vectors) insert.run(personId, model.name, model.version, v.length, toBlob(v), now);
  }
}

function migrate(db: Database.Database, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > migrations.length) {
    throw new FailedPreconditionError(
      `gallery ${path} has schema version ${version}, newer than this build supports (${migrations.length})`,
    );
  }
  for (let v = version; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
