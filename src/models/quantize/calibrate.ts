// Calibration inputs for static quantization: face crops of the shared labelled sets, made exactly as the server makes
// them (detector, the model's crop or alignment, refined second crop), captured at the model's input tensor.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { NotFoundError } from '../../core/errors.js';
import type { OrtSession } from '../../onnx/runtime.js';
import { readAgeUtkface, readEmotionFer, readLandmarksWflw, type EvalDataset } from '../eval/datasets.js';
import { pickFace, runOnFace } from '../eval/serving.js';
import { detectFaces, type LoadedModel } from '../runner.js';
import type { CalibrationInput } from './ranges.js';

/** Dataset folders under the shared data root that calibrate every model (face crops are face crops, whatever the label). */
const readers: Record<string, (path: string, limit: number, seed: number) => Promise<EvalDataset<unknown>>> = {
  'age-utkface': readAgeUtkface,
  'emotion-fer2013': readEmotionFer,
  'landmarks-wflw': readLandmarksWflw,
};

export interface CalibrationSet {
  inputs: CalibrationInput[];
  datasets: string[];
  faces: number;
}

export interface CalibrationSetOptions {
  /** Shared data root (holding age-utkface, emotion-fer2013, landmarks-wflw) or one of those folders. */
  data: string;
  /** Faces per dataset (default 64). */
  facesPerDataset?: number;
  /** Sampling seed; not the evaluation's seed 1, so the calibration sample differs from a limited eval sample. */
  seed?: number;
  progress?: (line: string) => void;
}

function datasetFolders(data: string): string[] {
  const root = resolve(data);
  if (readers[basename(root)]) return [root];
  const found = Object.keys(readers)
    .map((name) => join(root, name))
    .filter((p) => existsSync(p));
  if (found.length === 0)
    throw new NotFoundError(`calibration data ${root}: none of ${Object.keys(readers).join(', ')} found there (use the shared data root)`);
  return found;
}

/** The model with its session wrapped so that every input tensor it is run on is copied out. */
function capturing(model: LoadedModel, sink: CalibrationInput[]): LoadedModel {
  const inputName = model.manifest.input.name;
  const session = new Proxy(model.session, {
    get(target, prop, receiver) {
      if (prop !== 'run') return Reflect.get(target, prop, receiver) as unknown;
      return (feeds: Record<string, { data: unknown; dims: readonly number[] }>, ...rest: unknown[]) => {
        const t = feeds[inputName];
        if (t) sink.push({ data: Float32Array.from(t.data as Float32Array), dims: [...t.dims] });
        return (target.run as (...a: unknown[]) => unknown).call(target, feeds, ...rest);
      };
    },
  }) as OrtSession;
  return { ...model, session };
}

/** Model inputs of `facesPerDataset` faces of each dataset, through the serving path of the float model. */
export async function calibrationSet(model: LoadedModel, detector: LoadedModel, options: CalibrationSetOptions): Promise<CalibrationSet> {
  const inputs: CalibrationInput[] = [];
  const tap = capturing(model, inputs);
  const folders = datasetFolders(options.data);
  let faces = 0;
  for (const folder of folders) {
    const dataset = await readers[basename(folder)]!(folder, options.facesPerDataset ?? 64, options.seed ?? 7);
    for (const item of dataset.items) {
      const frame = await dataset.frame(item);
      const found = [...(await detectFaces(detector, frame.frame))].sort((a, b) => b.score - a.score);
      const face = pickFace(found, frame.target);
      if (!face) continue;
      await runOnFace(tap, frame, face);
      faces++;
    }
    options.progress?.(`calibration: ${dataset.name}: ${faces} faces so far`);
  }
  if (faces === 0) throw new NotFoundError(`calibration data ${options.data}: the detector found no face`);
  return { inputs, datasets: folders.map((f) => basename(f)), faces };
}
