// Quantization arithmetic of the QDQ format: per-channel symmetric int8 weights, per-tensor uint8 activations, int32 biases.
import { InvalidInputError } from '../../core/errors.js';

/** Largest magnitude of a symmetric int8 weight; -128 is left unused so that the grid is symmetric around zero. */
export const INT8_WEIGHT_MAX = 127;
export const UINT8_MAX = 255;

export interface PerChannelWeights {
  /** One scale per channel along `axis`. */
  scales: Float32Array;
  /** The quantized weights, same layout as the float ones. */
  values: Int8Array;
  axis: number;
}

export interface ActivationParams {
  scale: number;
  zeroPoint: number;
}

/** Elements per step along `axis` and the number of blocks before it, for a row-major tensor of `dims`. */
function axisLayout(dims: readonly number[], axis: number): { channels: number; inner: number; outer: number } {
  if (axis < 0 || axis >= dims.length) throw new InvalidInputError(`quantization axis ${axis} is outside a rank-${dims.length} tensor`);
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  const outer = dims.slice(0, axis).reduce((a, d) => a * d, 1);
  return { channels, inner, outer };
}

/**
 * Symmetric per-channel int8 quantization (zero point 0): scale_c = max|w_c| / 127. A channel of zeros gets scale 1,
 * which ONNX Runtime accepts and which still dequantizes to zeros.
 */
export function quantizeWeightsPerChannel(weights: Float32Array, dims: readonly number[], axis: number): PerChannelWeights {
  const { channels, inner, outer } = axisLayout(dims, axis);
  if (channels * inner * outer !== weights.length)
    throw new InvalidInputError(`weights of ${weights.length} values do not fill [${dims.join(',')}]`);
  const maxAbs = new Float32Array(channels);
  const channelOf = (i: number): number => Math.floor(i / inner) % channels;
  for (let i = 0; i < weights.length; i++) {
    const c = channelOf(i);
    maxAbs[c] = Math.max(maxAbs[c]!, Math.abs(weights[i]!));
  }
  const scales = maxAbs.map((m) => (m > 0 ? m / INT8_WEIGHT_MAX : 1));
  const values = new Int8Array(weights.length);
  for (let i = 0; i < weights.length; i++) {
    const q = Math.round(weights[i]! / scales[channelOf(i)]!);
    values[i] = Math.max(-INT8_WEIGHT_MAX, Math.min(INT8_WEIGHT_MAX, q));
  }
  return { scales, values, axis };
}

/** The float weights a per-channel quantization stands for (what DequantizeLinear computes). */
export function dequantizeWeights(q: PerChannelWeights, dims: readonly number[]): Float32Array {
  const { channels, inner } = axisLayout(dims, q.axis);
  return Float32Array.from(q.values, (v, i) => v * q.scales[Math.floor(i / inner) % channels]!);
}

/**
 * Asymmetric uint8 parameters covering [min, max] widened to include 0 (so zero padding and ReLU zeros are exact).
 * With min = 0 the zero point is 0 and quantization clips negatives: a ReLU for free.
 */
export function activationParams(min: number, max: number): ActivationParams {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max)
    throw new InvalidInputError(`activation range [${min}, ${max}] is not a finite interval`);
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  if (hi - lo < 1e-12) return { scale: 1, zeroPoint: 0 };
  const scale = (hi - lo) / UINT8_MAX;
  const zeroPoint = Math.max(0, Math.min(UINT8_MAX, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** QuantizeLinear then DequantizeLinear of one value: what the graph computes for an activation. */
export function fakeQuantize(value: number, p: ActivationParams): number {
  const q = Math.max(0, Math.min(UINT8_MAX, Math.round(value / p.scale) + p.zeroPoint));
  return (q - p.zeroPoint) * p.scale;
}

/** Bias as int32 at scale inputScale * weightScale_c (zero point 0), the layout QLinearConv expects. */
export function quantizeBias(
  bias: Float32Array,
  inputScale: number,
  weightScales: Float32Array,
): { values: Int32Array; scales: Float32Array } {
  if (weightScales.length !== bias.length)
    throw new InvalidInputError(`bias of ${bias.length} values for ${weightScales.length} weight channels`);
  const scales = weightScales.map((s) => s * inputScale);
  const values = Int32Array.from(bias, (b, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(b / scales[c]!))));
  return { values, scales };
}
