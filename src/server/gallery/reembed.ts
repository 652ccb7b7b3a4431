// `kt gallery reembed`: every enrolled person's embeddings recomputed with another model from the enrolment face
// crops the gallery keeps, without the people coming back to enrol again.
import { existsSync } from 'node:fs';
import { InvalidInputError, NotFoundError } from '../../core/errors.js';
import { runFaceModel } from '../../models/aligned-run.js';
import { defaultRepositoryPath, resolveModel } from '../../models/repository.js';
import { loadModel } from '../../models/runner.js';
import { faceFromEnrolment } from './enrolment-face.js';
import { IdentityGallery } from './store.js';

export interface ReembedOptions {
  /** Model repository (default: the project's). */
  repo?: string;
  /** Model version (default: the highest). */
  version?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface ReembedReport {
  model: { name: string; version: number };
  /** People re-embedded, and their faces (one embedding each). */
  people: number;
  faces: number;
  /** People without a kept enrolment face (enrolled before faces were kept): they need to enrol again. */
  withoutFaces: { id: string; name: string }[];
}

/**
 * Recomputes every person's embeddings of `modelName` from the kept enrolment faces, in one transaction (the
 * model's earlier embeddings, if any, are replaced). Other models' embeddings stay. The server must be configured
 * to answer identity with `modelName` (`taskModels.identity`) to use them.
 */
export async function reembedGallery(galleryPath: string, modelName: string, options: ReembedOptions = {}): Promise<ReembedReport> {
  if (galleryPath !== ':memory:' && !existsSync(galleryPath)) throw new NotFoundError(`no gallery at ${galleryPath}`);
  const entry = await resolveModel(modelName, options.version, options.repo ?? defaultRepositoryPath());
  if (!entry.manifest.outputs.some((o) => o.decoding.type === 'embedding'))
    throw new InvalidInputError(
      `model ${modelName} has no embedding output (its outputs answer: ${[...new Set(entry.manifest.outputs.map((o) => o.task))].join(', ')})`,
    );
  const model = await loadModel(entry);
  const gallery = IdentityGallery.open({ path: galleryPath });
  const log = options.log ?? (() => {});
  try {
    const byPerson = new Map<string, Float32Array[]>();
    const withoutFaces: ReembedReport['withoutFaces'] = [];
    let faces = 0;
    for (const person of gallery.list()) {
      const stored = gallery.faces(person.id);
      if (stored.length === 0) {
        withoutFaces.push({ id: person.id, name: person.name });
        continue;
      }
      const vectors: Float32Array[] = [];
      for (const f of stored) {
        const { frame, face } = await faceFromEnrolment(f.image, f.format);
        const out = (await runFaceModel(model, frame, [face])).decoded[0]!.find((d) => d.type === 'embedding');
        if (out?.type === 'embedding') vectors.push(out.vector);
      }
      byPerson.set(person.id, vectors);
      faces += vectors.length;
      log(`${person.name} (${person.id}): ${vectors.length} face(s)`);
    }
    gallery.replaceModelEmbeddings({ name: entry.manifest.name, version: String(entry.manifest.version) }, byPerson);
    return { model: { name: entry.manifest.name, version: entry.manifest.version }, people: byPerson.size, faces, withoutFaces };
  } finally {
    gallery.close();
    await model.session.release();
  }
}
