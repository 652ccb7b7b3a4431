// Dense layers and MLP decoders as plain tf.Variables: random or pre-trained initialisation, forward, read-back.
import type { Tf } from './tfjs-backend.js';
import type { Tensor, Tensor2D, Variable } from '@tensorflow/tfjs';
import { InvalidInputError } from '../core/errors.js';
import { applyHiddenActivation, matMul, variableOf, type HiddenActivation, type OutputActivation } from './tensor-ops.js';
import { fillUniform, type UniformRandom } from './seeded-random.js';
import type { TokenStats } from './token-dataset.js';

export interface DenseLayer {
  /** [inputs, outputs] */
  kernel: Variable;
  /** [outputs] */
  bias: Variable;
  activation: HiddenActivation;
}

/** Weights of a pre-trained dense layer (for example the shipped model's head after GAP), kernel row-major [inputs, outputs]. */
export interface PretrainedDense {
  kernel: Float32Array;
  bias: Float32Array;
  inputs: number;
  outputs: number;
  /** 'softmax' is accepted on the last layer only and becomes the model's output activation. */
  activation: HiddenActivation | 'softmax';
}

/** How to initialise a decoder MLP: copy pre-trained layers, or draw a new one. */
export type DecoderInit =
  | { pretrained: readonly PretrainedDense[] }
  | {
      /** Hidden widths; default [] (a linear decoder). */
      hidden?: readonly number[];
      outputs: number;
      /** Default 'relu'. */
      hiddenActivation?: HiddenActivation;
    };

export interface Mlp {
  layers: DenseLayer[];
  /** Applied at inference and export only; training losses work on the pre-activation outputs (logits). */
  outputActivation: OutputActivation;
}

/** Dense weights read back to plain arrays (for export and snapshots). */
export interface DenseWeights {
  kernel: Float32Array;
  bias: Float32Array;
  inputs: number;
  outputs: number;
  activation: HiddenActivation;
}

function glorotKernel(random: UniformRandom, inputs: number, outputs: number): Float32Array {
  return fillUniform(random, new Float32Array(inputs * outputs), Math.sqrt(6 / (inputs + outputs)));
}

/**
 * A new decoder. With random initialisation and `inputStats`, the first layer is drawn for standardised inputs and
 * the standardisation is folded into its weights, so the decoder reads raw tokens (like a pre-trained head) but starts
 * well-conditioned.
 */
export function createMlp(
  tf: Tf,
  inputs: number,
  init: DecoderInit,
  random: UniformRandom,
  inputStats?: TokenStats,
  outputActivation: OutputActivation = 'none',
): Mlp {
  if ('pretrained' in init) return mlpFromPretrained(tf, inputs, init.pretrained, outputActivation);
  const widths = [inputs, ...(init.hidden ?? []), init.outputs];
  const layers: DenseLayer[] = [];
  for (let i = 0; i + 1 < widths.length; i++) {
    const fanIn = widths[i]!;
    const fanOut = widths[i + 1]!;
    const kernel = glorotKernel(random, fanIn, fanOut);
    const bias = new Float32Array(fanOut);
    if (i === 0 && inputStats) foldStandardisation(kernel, bias, inputStats, fanOut);
    layers.push({
      kernel: variableOf(tf, kernel, [fanIn, fanOut], true),
      bias: variableOf(tf, bias, [fanOut], true),
      activation: i + 2 < widths.length ? (init.hiddenActivation ?? 'relu') : 'none',
    });
  }
  return { layers, outputActivation };
}

/** W' = diag(1/std) W, b' = b - (mean/std) W: a layer on raw x equals the original layer on (x - mean)/std. */
function foldStandardisation(kernel: Float32Array, bias: Float32Array, stats: TokenStats, outputs: number): void {
  for (let r = 0; r < stats.mean.length; r++) {
    const inverseStd = 1 / stats.std[r]!;
    const shift = stats.mean[r]! * inverseStd;
    for (let c = 0; c < outputs; c++) {
      const original = kernel[r * outputs + c]!;
      bias[c] = bias[c]! - shift * original;
      kernel[r * outputs + c] = original * inverseStd;
    }
  }
}

function mlpFromPretrained(tf: Tf, inputs: number, pretrained: readonly PretrainedDense[], outputActivation: OutputActivation): Mlp {
  if (pretrained.length === 0) throw new InvalidInputError('pre-trained decoder has no layers');
  let width = inputs;
  let finalActivation = outputActivation;
  const layers = pretrained.map((p, i): DenseLayer => {
    const last = i === pretrained.length - 1;
    if (p.inputs !== width) throw new InvalidInputError(`pre-trained decoder layer ${i} expects ${p.inputs} inputs, got ${width}`);
    if (p.kernel.length !== p.inputs * p.outputs || p.bias.length !== p.outputs)
      throw new InvalidInputError(`pre-trained decoder layer ${i}: kernel/bias sizes do not match ${p.inputs}x${p.outputs}`);
    let activation: HiddenActivation;
    if (p.activation === 'softmax') {
      if (!last) throw new InvalidInputError(`pre-trained decoder layer ${i}: softmax is only allowed on the last layer`);
      finalActivation = 'softmax';
      activation = 'none';
    } else activation = p.activation;
    width = p.outputs;
    return { kernel: variableOf(tf, p.kernel, [p.inputs, p.outputs], true), bias: variableOf(tf, p.bias, [p.outputs], true), activation };
  });
  return { layers, outputActivation: finalActivation };
}

/** Forward through every layer; returns pre-output-activation values [N, outputs]. */
export function applyMlp(tf: Tf, mlp: Mlp, x: Tensor): Tensor2D {
  return tf.tidy(() => {
    let h = x;
    for (const layer of mlp.layers) h = applyHiddenActivation(tf, tf.add(matMul(tf, h, layer.kernel), layer.bias), layer.activation);
    return h as Tensor2D;
  });
}

export function mlpVariables(mlp: Mlp): Variable[] {
  return mlp.layers.flatMap((l) => [l.kernel, l.bias]);
}

export function readMlp(mlp: Mlp): DenseWeights[] {
  return mlp.layers.map((l) => ({
    kernel: l.kernel.dataSync() as Float32Array,
    bias: l.bias.dataSync() as Float32Array,
    inputs: l.kernel.shape[0]!,
    outputs: l.kernel.shape[1]!,
    activation: l.activation,
  }));
}

export function mlpOutputs(mlp: Mlp): number {
  return mlp.layers[mlp.layers.length - 1]!.kernel.shape[1]!;
}
