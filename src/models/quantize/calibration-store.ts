// Stored calibrations: per model the activation ranges (numbers only) and the measured change they gave, kept in the
// package so that `kt models build` rewrites int8 versions without the calibration images.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelFormatError, NotFoundError, errorMessage } from '../../core/errors.js';
import type { PrecisionSpec } from '../manifest.js';
import type { QuantizableOp } from './qdq-graph.js';

export interface StoredCalibration {
  model: string;
  /** sha256 of the fp32 model.onnx the ranges were measured on; a rebuilt different graph needs a new calibration. */
  sourceSha256: string;
  rangeMethod: string;
  ops: QuantizableOp[];
  /** Output tensors of nodes kept in float (sensitive layers found by measurement); absent: none. */
  keepFloat?: string[];
  datasets: string[];
  faces: number;
  /** Tensor name (in the folded float graph) -> [min, max]. */
  ranges: Record<string, [number, number]>;
  /** Measured with this calibration by `kt models quantize --data`; copied into the int8 manifest. */
  speed?: PrecisionSpec['speed'];
  accuracy?: PrecisionSpec['accuracy'];
  date: string;
}

/** src/models/quantize/calibration/ (three levels under the package root, from src/ or dist/ alike). */
export function calibrationDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'models', 'quantize', 'calibration');
}

export const calibrationPath = (model: string, dir = calibrationDir()): string => join(dir, `${model}.json`);

export function hasCalibration(model: string, dir = calibrationDir()): boolean {
  return existsSync(calibrationPath(model, dir));
}

/** The stored calibration of `model`; a clear NotFoundError saying how to make one when there is none. */
export async function readCalibration(model: string, dir = calibrationDir()): Promise<StoredCalibration> {
  const path = calibrationPath(model, dir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new NotFoundError(
      `model ${model} has no stored calibration (${path}): run \`kt models quantize ${model} --data DIR\` with the shared face data to calibrate it`,
    );
  }
  try {
    const parsed = JSON.parse(text) as StoredCalibration;
    if (parsed.model !== model || typeof parsed.ranges !== 'object' || !parsed.sourceSha256)
      throw new Error('missing model, ranges or sourceSha256');
    return parsed;
  } catch (e) {
    throw new ModelFormatError(`calibration ${path} is not valid: ${errorMessage(e)}`, { cause: e });
  }
}

const round = (v: number): number => Number(v.toPrecision(6));

export async function writeCalibration(c: StoredCalibration, dir = calibrationDir()): Promise<string> {
  const path = calibrationPath(c.model, dir);
  await mkdir(dir, { recursive: true });
  const ranges = Object.fromEntries(Object.entries(c.ranges).map(([k, [lo, hi]]) => [k, [round(lo), round(hi)]]));
  await writeFile(path, `${JSON.stringify({ ...c, ranges }, null, 2)}\n`);
  return path;
}
