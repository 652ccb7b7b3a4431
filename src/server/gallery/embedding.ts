// Embedding vectors for the identity gallery: validation, L2 normalisation and the Float32 blob encoding.
import { InvalidInputError } from '../../core/errors.js';

/** The recognition model that produced an embedding; embeddings of different name@version never meet. */
export interface EmbeddingModel {
  name: string;
  version: string;
}

export type EmbeddingInput = Float32Array | readonly number[];

export function modelKey(model: EmbeddingModel): string {
  return `${model.name}@${model.version}`;
}

export function checkModel(model: EmbeddingModel): void {
  if (typeof model?.name !== 'string' || model.name.trim() === '' || typeof model.version !== 'string' || model.version.trim() === '') {
    throw new InvalidInputError('an embedding model needs a non-empty name and version');
  }
}

/** Returns a new L2-normalised Float32Array; rejects empty, non-finite and all-zero vectors. */
export function l2Normalised(vector: EmbeddingInput, what = 'embedding'): Float32Array {
  if (vector.length === 0) throw new InvalidInputError(`${what} is empty`);
  let sumSquares = 0;
  for (let i = 0; i < vector.length; i++) {
    const v = vector[i] as number;
    if (!Number.isFinite(v)) throw new InvalidInputError(`${what} has a non-finite value at index ${i}`);
    sumSquares += v * v;
  }
  if (sumSquares === 0) throw new InvalidInputError(`${what} is all zeros and has no direction`);
  const inverseNorm = 1 / Math.sqrt(sumSquares);
  const out = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++) out[i] = (vector[i] as number) * inverseNorm;
  return out;
}

/** Little-endian float32 bytes (the byte order of every platform we target), copied. */
export function toBlob(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer.slice(vector.byteOffset, vector.byteOffset + vector.byteLength));
}

/** Copies, because a blob's bytes need not be 4-byte aligned inside its buffer. */
export function fromBlob(blob: Uint8Array, dims: number): Float32Array {
  if (blob.byteLength !== dims * 4) {
    throw new InvalidInputError(`stored embedding has ${blob.byteLength} bytes, expected ${dims * 4} for ${dims} dims`);
  }
  return new Float32Array(new Uint8Array(blob).buffer);
}
