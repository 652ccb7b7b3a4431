// Task-model output decoding: class labels, age, gender, landmarks back to frame pixels, embeddings.
import { InvalidInputError, ModelFormatError } from '../../core/errors.js';
import type { FaceTask, OutputDecoding } from '../manifest.js';
import { toFramePoint, type FrameTransform, type Point } from './geometry.js';

export interface ClassScore {
  label: string;
  score: number;
}

export interface Classification {
  /** The most probable label and its probability. */
  label: string;
  score: number;
  /** Every label, most probable first. */
  scores: ClassScore[];
}

export interface GenderResult {
  gender: 'male' | 'female';
  /** 0 at p = 0.5 up to 1 at p = 0 or 1: human's 2 * |p - 0.5|. */
  confidence: number;
  /** The raw sigmoid output: probability of the model's positive class. */
  probability: number;
}

/** Numerically stable softmax. */
export function softmax(logits: ArrayLike<number>): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp(logits[i]! - max);
    sum += out[i]!;
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Labels from a classifier head; 'none' means the graph already ends in softmax (human's emotion model does). */
export function decodeClassification(
  values: ArrayLike<number>,
  labels: readonly string[],
  activation: 'softmax' | 'sigmoid' | 'none',
): Classification {
  if (values.length !== labels.length)
    throw new ModelFormatError(`classifier output has ${values.length} values for ${labels.length} labels`);
  if (labels.length === 0) throw new ModelFormatError('classifier has no labels');
  const probs =
    activation === 'softmax'
      ? softmax(values)
      : activation === 'sigmoid'
        ? Float32Array.from(values as ArrayLike<number>, sigmoid)
        : Float32Array.from(values as ArrayLike<number>);
  const scores = labels.map((label, i) => ({ label, score: probs[i]! })).sort((a, b) => b.score - a.score);
  return { label: scores[0]!.label, score: scores[0]!.score, scores };
}

/**
 * Age in years from faceres' 100-way softmax (one bin per year), exactly as human decodes it: the argmax bin,
 * moved towards the larger neighbour by ten times that neighbour's probability. (An expectation over the bins
 * would be the textbook choice; matching human keeps results comparable with it.)
 */
export function decodeAgeBins(probabilities: ArrayLike<number>): number {
  const n = probabilities.length;
  if (n < 2) throw new ModelFormatError(`age output has ${n} bins; expected at least 2`);
  let best = 0;
  for (let i = 1; i < n; i++) if (probabilities[i]! > probabilities[best]!) best = i;
  const below = best > 0 ? probabilities[best - 1]! : -Infinity;
  const above = best < n - 1 ? probabilities[best + 1]! : -Infinity;
  const age = below > above ? 10 * best - 100 * below : 10 * best + 100 * above;
  return Math.round(age) / 10;
}

/** Age in years as the expected bin index of a one-bin-per-year softmax: continuous, no heaping on favourite bins. */
export function decodeAgeExpectation(probabilities: ArrayLike<number>): number {
  let total = 0;
  let sum = 0;
  for (let i = 0; i < probabilities.length; i++) {
    sum += i * probabilities[i]!;
    total += probabilities[i]!;
  }
  if (!(total > 0)) throw new ModelFormatError('age output has no probability mass');
  return Math.round((10 * sum) / total) / 10;
}

/** Age regressed directly: years = value * scale. */
export function decodeAgeYears(value: number, scale: number): number {
  return value * scale;
}

/** Gender from one sigmoid output: p is the probability of `positive` (faceres: p > 0.5 means male). */
export function decodeGender(probability: number, positive: 'male' | 'female'): GenderResult {
  const negative = positive === 'male' ? 'female' : 'male';
  return {
    gender: probability > 0.5 ? positive : negative,
    confidence: Math.min(1, 2 * Math.abs(probability - 0.5)),
    probability,
  };
}

/**
 * Gender from a two-class classifier (face-api's AgeGenderNet: softmax [male, female]): the same GenderResult as the
 * sigmoid decoding, with `probability` the probability of male. Labels must be exactly 'male' and 'female' (any order);
 * the manifest check (manifestTaskProblems) rejects other labels on load.
 */
export function decodeGenderClasses(
  values: ArrayLike<number>,
  labels: readonly string[],
  activation: 'softmax' | 'sigmoid' | 'none',
): GenderResult {
  const male = labels.indexOf('male');
  const female = labels.indexOf('female');
  if (labels.length !== 2 || male < 0 || female < 0)
    throw new ModelFormatError(`a gender classifier needs the labels male and female, got ${labels.join(', ') || 'none'}`);
  const probs = decodeClassification(values, labels, activation).scores;
  const pMale = probs.find((s) => s.label === 'male')!.score;
  const pFemale = probs.find((s) => s.label === 'female')!.score;
  const sum = pMale + pFemale;
  return decodeGender(sum > 0 ? pMale / sum : 0.5, 'male');
}

/**
 * Landmarks from crop space to frame pixels. Values are x,y(,z) per point; with `normalized` they are fractions
 * of the crop (0..1) after multiplying by coordinateScale, otherwise model-input pixels after multiplying by it.
 * `transform` is the crop's (FaceCrop.transform) and `inputSize` the model's square input size. z is scaled like x.
 */
export function landmarksToFrame(
  values: ArrayLike<number>,
  decoding: Extract<OutputDecoding, { type: 'landmarks' }>,
  transform: FrameTransform,
  inputSize: number,
): Point[] {
  const { count, dims, coordinateScale, normalized } = decoding;
  if (values.length < count * dims)
    throw new ModelFormatError(`landmark output has ${values.length} values; ${count} points x ${dims} need ${count * dims}`);
  const toPixels = normalized ? coordinateScale * inputSize : coordinateScale;
  const points: Point[] = [];
  for (let i = 0; i < count; i++) {
    const x = values[i * dims]! * toPixels;
    const y = values[i * dims + 1]! * toPixels;
    const p = toFramePoint(transform, x, y);
    if (dims === 3) p.z = values[i * dims + 2]! * toPixels * transform.scaleX;
    points.push(p);
  }
  return points;
}

/** Unit-length copy of an embedding (cosine similarity becomes a dot product). A zero vector is an error. */
export function l2Normalize(values: ArrayLike<number>): Float32Array {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! * values[i]!;
  const norm = Math.sqrt(sum);
  if (!(norm > 0) || !Number.isFinite(norm)) throw new InvalidInputError(`cannot L2-normalise an embedding of norm ${norm}`);
  return Float32Array.from(values as ArrayLike<number>, (v) => v / norm);
}

/** Cosine similarity of two vectors (for L2-normalised ones, their dot product); -1 when they differ in length or one is zero. */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -1;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : -1;
}

/** One decoded output, tagged like the decoding that produced it. */
export type DecodedOutput =
  | { type: 'classification'; task: FaceTask; value: Classification }
  | { type: 'age'; task: FaceTask; years: number }
  | { type: 'gender'; task: FaceTask; value: GenderResult }
  | { type: 'landmarks'; task: FaceTask; scheme: string; points: Point[] }
  | { type: 'embedding'; task: FaceTask; vector: Float32Array }
  | { type: 'scalar'; task: FaceTask; value: number };

/** Where a crop came from, for outputs in crop coordinates. */
export interface CropContext {
  transform: FrameTransform;
  inputSize: number;
}

/**
 * Decodes one output of one face (values of batch item 0 or a per-face slice) by its manifest decoding.
 * The detector ('blazeface') is decoded per frame by decodeBlazeface instead.
 */
export function decodeOutput(
  output: { task: FaceTask; decoding: OutputDecoding },
  values: Float32Array,
  crop?: CropContext,
): DecodedOutput {
  const { task, decoding } = output;
  switch (decoding.type) {
    case 'classification':
      // One decoding per task: a two-class gender head answers with the same `gender` result as a sigmoid one.
      if (task === 'gender') return { type: 'gender', task, value: decodeGenderClasses(values, decoding.labels, decoding.activation) };
      return { type: 'classification', task, value: decodeClassification(values, decoding.labels, decoding.activation) };
    case 'age-bins':
      return { type: 'age', task, years: decoding.method === 'argmax-neighbour' ? decodeAgeBins(values) : decodeAgeExpectation(values) };
    case 'age-years':
      return { type: 'age', task, years: decodeAgeYears(values[0]!, decoding.scale) };
    case 'gender-sigmoid':
      return { type: 'gender', task, value: decodeGender(values[0]!, decoding.positive) };
    case 'landmarks':
      if (!crop) throw new InvalidInputError('landmark decoding needs the crop transform and input size');
      return {
        type: 'landmarks',
        task,
        scheme: decoding.scheme,
        points: landmarksToFrame(values, decoding, crop.transform, crop.inputSize),
      };
    case 'embedding': {
      if (values.length !== decoding.size)
        throw new ModelFormatError(`embedding has ${values.length} values; the manifest says ${decoding.size}`);
      return { type: 'embedding', task, vector: decoding.normalize === 'l2' ? l2Normalize(values) : Float32Array.from(values) };
    }
    case 'scalar':
      return { type: 'scalar', task, value: decoding.activation === 'sigmoid' ? sigmoid(values[0]!) : values[0]! };
    case 'blazeface':
      throw new InvalidInputError('blazeface outputs are decoded per frame with decodeBlazeface, not per face');
  }
}
