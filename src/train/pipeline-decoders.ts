// Decoder initialisation from the shipped canonical model: dense layers read off a GAP+dense head, or a linear decoder fitted to a conv head's outputs.
import { InvalidInputError, ModelFormatError } from '../core/errors.js';
import type { ModelProto, NodeProto, TensorProto } from '../onnx/proto.js';
import { tensorDims, tensorToFloat32 } from '../onnx/proto.js';
import type { PretrainedDense } from './dense.js';

type Activation = PretrainedDense['activation'];

/** A dense layer being read off the head; Add and activation nodes complete the last one. */
type DenseLayer = { kernel: Float32Array; bias: Float32Array; inputs: number; outputs: number; activation: Activation };
type GraphProto = NonNullable<ModelProto['graph']>;

const chainActivations: Record<string, Activation> = { Relu: 'relu', Sigmoid: 'sigmoid', Tanh: 'tanh', Softmax: 'softmax', Clip: 'relu6' };

/**
 * The chain of dense layers from the pooled input of a GAP head to one of its outputs (MatMul/Gemm, Add, then an
 * activation per layer), as PretrainedDense weights. Branches the output does not depend on (other outputs) are ignored.
 */
export function denseChainFromHead(head: ModelProto, output: string): PretrainedDense[] {
  const graph = head.graph;
  if (!graph) throw new ModelFormatError('head model has no graph');
  const inits = new Map<string, TensorProto>((graph.initializer ?? []).map((t) => [t.name!, t]));
  const layers: DenseLayer[] = [];
  for (const node of nodeChainTo(graph, inits, output)) readChainNode(node, inits, layers);
  if (layers.length === 0) throw new ModelFormatError(`head: no dense layer leads to ${output}`);
  return layers;
}

/** Walks back from the output to a graph input, following the one non-constant operand; nodes in graph order. */
function nodeChainTo(graph: GraphProto, inits: ReadonlyMap<string, TensorProto>, output: string): NodeProto[] {
  const inputs = new Set((graph.input ?? []).map((i) => i.name!));
  const producers = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producers.set(o, n);
  const chain: NodeProto[] = [];
  let tensor = output;
  while (!inputs.has(tensor)) {
    const node = producers.get(tensor);
    if (!node) throw new ModelFormatError(`head: tensor ${tensor} has no producer and is not an input`);
    chain.unshift(node);
    const operands = (node.input ?? []).filter((i) => i !== '' && !inits.has(i));
    if (operands.length !== 1)
      throw new ModelFormatError(
        `head: node ${node.name} (${node.opType}) has ${operands.length} non-constant inputs; only a dense chain can be read`,
      );
    tensor = operands[0]!;
  }
  return chain;
}

/** Adds a MatMul/Gemm layer, or folds an Add (bias) or an activation into the last layer. */
function readChainNode(node: NodeProto, inits: ReadonlyMap<string, TensorProto>, layers: DenseLayer[]): void {
  const last = (): DenseLayer => {
    const l = layers[layers.length - 1];
    if (!l) throw new ModelFormatError('head: bias or activation before any dense layer');
    return l;
  };
  const constOf = (): TensorProto => {
    const t = (node.input ?? []).map((i) => inits.get(i)).find((x) => x !== undefined);
    if (!t) throw new ModelFormatError(`head: node ${node.name} has no constant operand`);
    return t;
  };
  const op = node.opType ?? '';
  if (op === 'Identity' || op === 'Flatten') return;
  if (op === 'MatMul') {
    const w = constOf();
    const [inputs, outputs] = tensorDims(w) as [number, number];
    layers.push({ kernel: tensorToFloat32(w), bias: new Float32Array(outputs), inputs, outputs, activation: 'none' });
  } else if (op === 'Gemm') layers.push(gemmLayer(node, inits));
  else if (op === 'Add') {
    const l = last();
    const b = tensorToFloat32(constOf());
    if (b.length !== l.outputs) throw new ModelFormatError(`head: bias ${node.name} has ${b.length} values for ${l.outputs} outputs`);
    l.bias = l.bias.map((v, i) => v + b[i]!);
  } else if (Object.hasOwn(chainActivations, op)) last().activation = chainActivations[op]!;
  else throw new ModelFormatError(`head: op ${node.opType} (${node.name}) is not part of a dense chain`);
}

function gemmLayer(node: NodeProto, inits: ReadonlyMap<string, TensorProto>): DenseLayer {
  const w = inits.get(node.input![1]!);
  if (!w) throw new ModelFormatError(`head: Gemm ${node.name} has no constant weight`);
  const transB = Number(node.attribute?.find((a) => a.name === 'transB')?.i ?? 0) === 1;
  const [r, c] = tensorDims(w) as [number, number];
  const raw = tensorToFloat32(w);
  const outputs = transB ? r : c;
  const b = node.input?.[2] ? inits.get(node.input[2]) : undefined;
  return {
    kernel: transB ? transpose(raw, r, c) : raw,
    bias: b ? tensorToFloat32(b) : new Float32Array(outputs),
    inputs: transB ? c : r,
    outputs,
    activation: 'none',
  };
}

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c]!;
  return out;
}

/**
 * A linear decoder from a conv head "Conv(k x k) -> GAP -> softmax": the kernel summed over its taps plus the bias.
 * GAP(conv(F)) = sum_t W_t . mean(shift_t(F)) + b, which equals (sum_t W_t) . GAP(F) + b except for the zero-padded
 * border cells, so this is exact for the centre and approximate at the borders.
 */
export function linearFromConvHead(spatialHead: ModelProto): PretrainedDense {
  const graph = spatialHead.graph;
  const conv = graph?.node?.find((n) => n.opType === 'Conv');
  if (!graph || !conv) throw new ModelFormatError('conv head: no Conv node');
  const inits = new Map<string, TensorProto>((graph.initializer ?? []).map((t) => [t.name!, t]));
  const w = inits.get(conv.input![1]!);
  if (!w) throw new ModelFormatError('conv head: the Conv weight is not a constant');
  const [outputs, inputs, kh, kw] = tensorDims(w) as [number, number, number, number];
  const raw = tensorToFloat32(w);
  const kernel = new Float32Array(inputs * outputs);
  for (let o = 0; o < outputs; o++)
    for (let c = 0; c < inputs; c++) {
      let s = 0;
      for (let t = 0; t < kh * kw; t++) s += raw[(o * inputs + c) * kh * kw + t]!;
      kernel[c * outputs + o] = s;
    }
  const b = conv.input?.[2] ? inits.get(conv.input[2]) : undefined;
  const softmax = graph.node!.some((n) => n.opType === 'Softmax');
  return { kernel, bias: b ? tensorToFloat32(b) : new Float32Array(outputs), inputs, outputs, activation: softmax ? 'softmax' : 'none' };
}

/**
 * Least-squares fit of a linear decoder y = x W + b to target logits (row-centred log-probabilities of the shipped
 * model, since softmax ignores a per-row shift), with a small ridge on standardised inputs for conditioning.
 */
export function fitLinearDecoder(
  inputs: Float32Array,
  count: number,
  width: number,
  targets: Float32Array,
  outputs: number,
  options: { ridge?: number; activation?: Activation } = {},
): PretrainedDense {
  if (inputs.length !== count * width || targets.length !== count * outputs)
    throw new InvalidInputError('fitLinearDecoder: sizes do not match');
  const mean = new Float64Array(width);
  const std = new Float64Array(width);
  for (let i = 0; i < count; i++) for (let c = 0; c < width; c++) mean[c]! += inputs[i * width + c]! / count;
  for (let i = 0; i < count; i++)
    for (let c = 0; c < width; c++) {
      const d = inputs[i * width + c]! - mean[c]!;
      std[c]! += (d * d) / count;
    }
  for (let c = 0; c < width; c++) std[c] = Math.sqrt(std[c]!) || 1;
  const targetMean = new Float64Array(outputs);
  for (let i = 0; i < count; i++) for (let o = 0; o < outputs; o++) targetMean[o]! += targets[i * outputs + o]! / count;
  // Normal equations on z = (x - mean) / std (centred, so the bias is the target mean).
  const A = new Float64Array(width * width);
  const B = new Float64Array(width * outputs);
  const z = new Float64Array(width);
  for (let i = 0; i < count; i++) {
    for (let c = 0; c < width; c++) z[c] = (inputs[i * width + c]! - mean[c]!) / std[c]!;
    for (let r = 0; r < width; r++) {
      const zr = z[r]!;
      if (zr === 0) continue;
      for (let c = r; c < width; c++) A[r * width + c]! += zr * z[c]!;
      for (let o = 0; o < outputs; o++) B[r * outputs + o]! += zr * (targets[i * outputs + o]! - targetMean[o]!);
    }
  }
  const ridge = (options.ridge ?? 1e-3) * count;
  for (let r = 0; r < width; r++) {
    A[r * width + r]! += ridge;
    for (let c = 0; c < r; c++) A[r * width + c] = A[c * width + r]!;
  }
  const Wz = choleskySolve(A, B, width, outputs);
  const kernel = new Float32Array(width * outputs);
  const bias = new Float32Array(outputs);
  for (let o = 0; o < outputs; o++) {
    let b = targetMean[o]!;
    for (let c = 0; c < width; c++) {
      const k = Wz[c * outputs + o]! / std[c]!;
      kernel[c * outputs + o] = k;
      b -= k * mean[c]!;
    }
    bias[o] = b;
  }
  return { kernel, bias, inputs: width, outputs, activation: options.activation ?? 'none' };
}

/** Solves A X = B for symmetric positive definite A [n, n] and B [n, m] (row-major, float64). */
function choleskySolve(A: Float64Array, B: Float64Array, n: number, m: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j]!;
      for (let k = 0; k < j; k++) s -= L[i * n + k]! * L[j * n + k]!;
      if (i === j) {
        if (!(s > 0)) throw new InvalidInputError('least-squares fit: matrix is not positive definite');
        L[i * n + i] = Math.sqrt(s);
      } else L[i * n + j] = s / L[j * n + j]!;
    }
  }
  const X = Float64Array.from(B);
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < n; i++) {
      let s = X[i * m + c]!;
      for (let k = 0; k < i; k++) s -= L[i * n + k]! * X[k * m + c]!;
      X[i * m + c] = s / L[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = X[i * m + c]!;
      for (let k = i + 1; k < n; k++) s -= L[k * n + i]! * X[k * m + c]!;
      X[i * m + c] = s / L[i * n + i]!;
    }
  }
  return X;
}

/** Applies a linear layer (no activation) on the CPU: [count, outputs]. */
export function applyLinear(layer: PretrainedDense, inputs: Float32Array, count: number): Float32Array {
  const out = new Float32Array(count * layer.outputs);
  for (let i = 0; i < count; i++) {
    for (let o = 0; o < layer.outputs; o++) out[i * layer.outputs + o] = layer.bias[o]!;
    for (let c = 0; c < layer.inputs; c++) {
      const x = inputs[i * layer.inputs + c]!;
      if (x === 0) continue;
      for (let o = 0; o < layer.outputs; o++) out[i * layer.outputs + o]! += x * layer.kernel[c * layer.outputs + o]!;
    }
  }
  return out;
}

/** Row-centred log-probabilities: logits up to the per-row shift softmax ignores. */
export function centredLogProbabilities(probabilities: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(probabilities.length);
  for (let i = 0; i < probabilities.length / classes; i++) {
    let m = 0;
    for (let c = 0; c < classes; c++) {
      const v = Math.log(Math.max(probabilities[i * classes + c]!, 1e-12));
      out[i * classes + c] = v;
      m += v / classes;
    }
    for (let c = 0; c < classes; c++) out[i * classes + c]! -= m;
  }
  return out;
}

export function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length / classes; i++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[i * classes + c]!);
    let s = 0;
    for (let c = 0; c < classes; c++) {
      const e = Math.exp(logits[i * classes + c]! - max);
      out[i * classes + c] = e;
      s += e;
    }
    for (let c = 0; c < classes; c++) out[i * classes + c]! /= s;
  }
  return out;
}

export function argmaxRow(values: Float32Array, row: number, width: number): number {
  let best = 0;
  for (let c = 1; c < width; c++) if (values[row * width + c]! > values[row * width + best]!) best = c;
  return best;
}

/** How well decoder probabilities reproduce the shipped model's: top-1 agreement (%) and mean |p - p_ref|. */
export function reproduction(
  probabilities: Float32Array,
  reference: Float32Array,
  classes: number,
): { top1AgreementPct: number; meanAbsProbDiff: number } {
  const n = reference.length / classes;
  let agree = 0;
  let diff = 0;
  for (let i = 0; i < n; i++) {
    if (argmaxRow(probabilities, i, classes) === argmaxRow(reference, i, classes)) agree++;
    for (let c = 0; c < classes; c++) diff += Math.abs(probabilities[i * classes + c]! - reference[i * classes + c]!);
  }
  return { top1AgreementPct: (100 * agree) / Math.max(1, n), meanAbsProbDiff: diff / Math.max(1, n * classes) };
}
