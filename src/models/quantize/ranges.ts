// Activation ranges for static quantization: run the float model with the planned tensors exposed as outputs on
// calibration inputs, and reduce each tensor to [min, max] (absolute extremes, or percentiles that ignore rare outliers).
import { InvalidInputError } from '../../core/errors.js';
import { encodeModel, type ModelProto } from '../../onnx/proto.js';
import { createSession, runFloat } from '../../onnx/runtime.js';
import { addOutputs } from '../../onnx/subgraph.js';
import type { Ranges } from './qdq-graph.js';

export type RangeMethod = 'minmax' | 'percentile';

export interface CalibrationInput {
  data: Float32Array;
  dims: readonly number[];
}

export interface RangeOptions {
  method?: RangeMethod;
  /** Percentile method: the share of values kept inside the range on each tensor (default 0.9999). */
  percentile?: number;
}

/** Values sampled per tensor per batch for the percentile method: enough for 1e-4 tails, bounded memory. */
const SAMPLES_PER_BATCH = 20000;

/** A reproducible strided sample of `data` (every k-th value). */
function sample(data: Float32Array, count: number): Float32Array {
  if (data.length <= count) return data.slice();
  const step = data.length / count;
  return Float32Array.from({ length: count }, (_, i) => data[Math.floor(i * step)]!);
}

function percentileRange(values: Float32Array, keep: number): [number, number] {
  const sorted = values.slice().sort();
  const tail = (1 - keep) * (sorted.length - 1);
  return [sorted[Math.floor(tail)]!, sorted[Math.ceil(sorted.length - 1 - tail)]!];
}

/**
 * Ranges of `tensors` over the calibration inputs. Min/max takes the extremes seen; percentile keeps the central
 * `percentile` of a strided sample of each tensor's values, which tightens the quantization step where one value in a
 * million would otherwise set it.
 */
export async function collectRanges(
  model: ModelProto,
  inputName: string,
  tensors: readonly string[],
  inputs: readonly CalibrationInput[],
  options: RangeOptions = {},
): Promise<Record<string, [number, number]>> {
  if (inputs.length === 0) throw new InvalidInputError('calibration needs at least one input batch');
  const method = options.method ?? 'minmax';
  const keep = options.percentile ?? 0.9999;
  const { session } = await createSession(encodeModel(addOutputs(model, tensors)));
  const extremes = new Map<string, [number, number]>();
  const samples = new Map<string, Float32Array[]>();
  try {
    for (const input of inputs) {
      const out = await runFloat(session, { [inputName]: input }, tensors);
      for (const t of tensors) {
        const data = out[t]!.data;
        let [lo, hi] = extremes.get(t) ?? [Infinity, -Infinity];
        for (const v of data) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        extremes.set(t, [lo, hi]);
        if (method === 'percentile') samples.set(t, [...(samples.get(t) ?? []), sample(data, SAMPLES_PER_BATCH)]);
      }
    }
  } finally {
    await session.release();
  }
  const ranges: Record<string, [number, number]> = {};
  for (const t of tensors) {
    if (method === 'minmax') ranges[t] = extremes.get(t)!;
    else {
      const all = samples.get(t)!;
      const joined = new Float32Array(all.reduce((a, s) => a + s.length, 0));
      all.reduce((offset, s) => (joined.set(s, offset), offset + s.length), 0);
      ranges[t] = percentileRange(joined, keep);
    }
  }
  return ranges;
}

export type { Ranges };
