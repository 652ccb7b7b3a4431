// Static QDQ rewrite of a float graph: which tensors need calibrated ranges, then QuantizeLinear/DequantizeLinear pairs
// on the activations around Conv/Gemm/MatMul and per-channel int8 weights, in the pattern ONNX Runtime fuses into
// QLinearConv / QGemm / int8 MatMul kernels.
import { InvalidInputError, NotFoundError } from '../../core/errors.js';
import { attr, makeTensor, toAttributeProto } from '../../onnx/graph-builder.js';
import {
  DataType,
  tensorDims,
  tensorToFloat32,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from '../../onnx/proto.js';
import { withGraph } from '../../onnx/subgraph.js';
import { activationParams, quantizeBias, quantizeWeightsPerChannel } from './qdq-math.js';

export type QuantizableOp = 'Conv' | 'Gemm' | 'MatMul' | 'Add';
export const defaultQuantizedOps: readonly QuantizableOp[] = ['Conv', 'Add'];

export interface QdqOptions {
  /** Op types whose inputs and weights are quantized. Default: Conv only (the heads stay float; see the manifest's figures). */
  ops?: readonly QuantizableOp[];
  /** Output tensor names of nodes to keep in float (sensitive layers). */
  keepFloat?: readonly string[];
}

/** What calibration must measure: activation tensors (names in the float graph) and clamps from removable activations. */
export interface QdqPlan {
  /** Tensors whose [min, max] the calibration collects. */
  tensors: string[];
  /** Quantized node output -> the activation chain after it that quantization replaces (Relu, Relu6 as Min/Max, Clip). */
  chains: Record<string, { last: string; nodes: string[]; lo: number; hi: number }>;
}

export type Ranges = Readonly<Record<string, readonly [number, number]>>;

interface Target {
  node: NodeProto;
  weightAxis: number;
}

/** The per-channel axis of the weight input, or undefined when the node cannot be quantized here. */
function weightAxis(node: NodeProto, inits: Map<string, TensorProto>): number | undefined {
  const w = inits.get(node.input?.[1] ?? '');
  if (!w || w.dataType !== DataType.FLOAT) return undefined;
  const rank = tensorDims(w).length;
  if (node.opType === 'Conv') return rank >= 3 ? 0 : undefined;
  if (rank !== 2) return undefined;
  if (node.opType === 'MatMul') return 1;
  const transB = node.attribute?.find((a) => a.name === 'transB')?.i;
  const extra =
    node.attribute?.some((a) => (a.name === 'alpha' || a.name === 'beta') && a.f !== 1) ||
    node.attribute?.some((a) => a.name === 'transA' && Number(a.i) !== 0);
  return extra ? undefined : Number(transB ?? 0) === 1 ? 0 : 1;
}

function quantizationTargets(graph: GraphProto, options: QdqOptions): Target[] {
  const ops = new Set(options.ops ?? defaultQuantizedOps);
  const keep = new Set(options.keepFloat ?? []);
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const out: Target[] = [];
  for (const node of graph.node ?? []) {
    if (!ops.has(node.opType as QuantizableOp) || keep.has(node.output?.[0] ?? '')) continue;
    // Add of two activations (residuals): quantized in and out so that ORT runs QLinearAdd between int8 convolutions.
    if (node.opType === 'Add') {
      if (node.input?.length === 2 && node.input.every((i) => !inits.has(i))) out.push({ node, weightAxis: -1 });
      continue;
    }
    const axis = weightAxis(node, inits);
    if (axis !== undefined) out.push({ node, weightAxis: axis });
  }
  return out;
}

/** A scalar constant's value, when `name` is one. */
function scalarConst(name: string | undefined, inits: Map<string, TensorProto>): number | undefined {
  const t = name ? inits.get(name) : undefined;
  if (!t) return undefined;
  const v = tensorToFloat32(t);
  return v.length === 1 ? v[0] : undefined;
}

/** The clamp an activation node applies, when it only clamps (so a quantizer whose range lies inside can replace it). */
function clampOf(node: NodeProto, inits: Map<string, TensorProto>): [number, number] | undefined {
  if (node.opType === 'Relu') return [0, Infinity];
  if (node.opType === 'Min' && node.input?.length === 2) {
    const c = scalarConst(node.input[1], inits);
    return c === undefined ? undefined : [-Infinity, c];
  }
  if (node.opType === 'Max' && node.input?.length === 2) {
    const c = scalarConst(node.input[1], inits);
    return c === 0 ? [0, Infinity] : undefined;
  }
  if (node.opType === 'Clip') {
    const lo = node.input?.[1] ? scalarConst(node.input[1], inits) : -Infinity;
    const hi = node.input?.[2] ? scalarConst(node.input[2], inits) : Infinity;
    return lo === 0 && hi !== undefined ? [0, hi] : undefined;
  }
  return undefined;
}

/** Which tensors need ranges and which activation chains after quantized nodes can be dropped. */
export function planQdq(model: ModelProto, options: QdqOptions = {}): QdqPlan {
  const graph = model.graph as GraphProto;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name!));
  const readers = new Map<string, NodeProto[]>();
  for (const n of graph.node ?? []) for (const i of n.input ?? []) readers.set(i, [...(readers.get(i) ?? []), n]);
  const tensors = new Set<string>();
  const chains: QdqPlan['chains'] = {};
  for (const { node, weightAxis: axis } of quantizationTargets(graph, options)) {
    for (const input of axis < 0 ? node.input! : [node.input![0]!]) tensors.add(input);
    let last = node.output![0]!;
    const chain = { last, nodes: [] as string[], lo: -Infinity, hi: Infinity };
    for (;;) {
      const next = readers.get(last);
      const clamp = next?.length === 1 && !graphOutputs.has(last) ? clampOf(next[0]!, inits) : undefined;
      if (!clamp) break;
      chain.lo = Math.max(chain.lo, clamp[0]);
      chain.hi = Math.min(chain.hi, clamp[1]);
      last = next![0]!.output![0]!;
      chain.nodes.push(last);
    }
    chain.last = last;
    chains[node.output![0]!] = chain;
    tensors.add(last);
  }
  return { tensors: [...tensors], chains };
}

interface Emitter {
  nodes: NodeProto[];
  inits: TensorProto[];
  count: number;
}

function scalar(e: Emitter, name: string, value: number, dataType: number): string {
  const data = dataType === DataType.UINT8 ? Uint8Array.of(value) : Float32Array.of(value);
  e.inits.push(makeTensor(name, data, []));
  return name;
}

function int8Tensor(name: string, values: Int8Array, dims: readonly number[]): TensorProto {
  return { name, dataType: DataType.INT8, dims: [...dims], rawData: new Uint8Array(values.buffer.slice(0)) };
}

/** The DequantizeLinear of a quantized weight (per channel) feeding `node`, and of its int32 bias when there is one. */
function quantizeWeights(e: Emitter, target: Target, inits: Map<string, TensorProto>, inputScale: number): void {
  const { node, weightAxis: axis } = target;
  const w = inits.get(node.input![1]!)!;
  const dims = tensorDims(w);
  const q = quantizeWeightsPerChannel(tensorToFloat32(w), dims, axis);
  const base = node.output![0]!;
  const channels = q.scales.length;
  e.inits.push(int8Tensor(`${base}/W_q`, q.values, dims), makeTensor(`${base}/W_scale`, q.scales, [channels]));
  e.inits.push(int8Tensor(`${base}/W_zero`, new Int8Array(channels), [channels]));
  const axisAttr = [toAttributeProto('axis', attr.int(axis))];
  e.nodes.push({
    name: `${base}/W_dq`,
    opType: 'DequantizeLinear',
    input: [`${base}/W_q`, `${base}/W_scale`, `${base}/W_zero`],
    output: [`${base}/W_deq`],
    attribute: axisAttr,
  });
  node.input![1] = `${base}/W_deq`;
  const biasIndex = node.opType === 'MatMul' ? -1 : 2;
  const b = biasIndex > 0 ? inits.get(node.input![biasIndex] ?? '') : undefined;
  if (!b || tensorDims(b).length !== 1 || tensorDims(b)[0] !== channels) return;
  const qb = quantizeBias(tensorToFloat32(b), inputScale, q.scales);
  e.inits.push(makeTensor(`${base}/B_q`, qb.values, [channels]), makeTensor(`${base}/B_scale`, qb.scales, [channels]));
  e.inits.push(makeTensor(`${base}/B_zero`, new Int32Array(channels), [channels]));
  const biasAttr = [toAttributeProto('axis', attr.int(0))];
  e.nodes.push({
    name: `${base}/B_dq`,
    opType: 'DequantizeLinear',
    input: [`${base}/B_q`, `${base}/B_scale`, `${base}/B_zero`],
    output: [`${base}/B_deq`],
    attribute: biasAttr,
  });
  node.input![biasIndex] = `${base}/B_deq`;
}

function rangeOf(ranges: Ranges, tensor: string, clamp?: { lo: number; hi: number }): [number, number] {
  const r = ranges[tensor];
  if (!r)
    throw new NotFoundError(
      `no calibrated range for tensor "${tensor}": the calibration does not match this model (re-run kt models quantize --data)`,
    );
  if (!clamp) return [r[0], r[1]];
  return [Math.max(r[0], clamp.lo), Math.min(r[1], clamp.hi)];
}

/**
 * The QDQ model: per quantized tensor one QuantizeLinear after its producer and one DequantizeLinear per reader (every
 * reader reads the dequantized value, so the producer's only consumer is the Q node and ORT can fuse it), activation
 * chains after quantized nodes removed (the quantizer's range does their clamping), weights per-channel int8.
 */
export function applyQdq(model: ModelProto, plan: QdqPlan, ranges: Ranges, options: QdqOptions = {}): ModelProto {
  const source = model.graph as GraphProto;
  const inits = new Map((source.initializer ?? []).map((t) => [t.name!, t]));
  const graphOutputs = new Set((source.output ?? []).map((o) => o.name!));
  const dropped = new Set(Object.values(plan.chains).flatMap((c) => c.nodes));
  const nodes = (source.node ?? [])
    .filter((n) => !dropped.has(n.output?.[0] ?? ''))
    .map((n) => ({ ...n, input: [...(n.input ?? [])], output: [...(n.output ?? [])] }));
  const params = new Map<string, { scale: number; zeroPoint: number }>();
  for (const [out, chain] of Object.entries(plan.chains)) {
    const node = nodes.find((n) => n.output[0] === out);
    if (!node) throw new InvalidInputError(`QDQ plan names node output "${out}" that the model does not have`);
    node.output[0] = chain.last;
    const [lo, hi] = rangeOf(ranges, chain.last, chain.nodes.length > 0 ? chain : undefined);
    params.set(chain.last, activationParams(lo, hi));
  }
  for (const t of plan.tensors) if (!params.has(t)) params.set(t, activationParams(...rangeOf(ranges, t)));
  const targets = new Map(quantizationTargets({ ...source, node: nodes }, options).map((t) => [t.node, t]));
  const e: Emitter = { nodes: [], inits: [], count: 0 };
  const emitQ = (t: string): void => {
    const p = params.get(t)!;
    const s = scalar(e, `${t}/scale`, p.scale, DataType.FLOAT);
    const z = scalar(e, `${t}/zero`, p.zeroPoint, DataType.UINT8);
    e.nodes.push({ name: `${t}/Q`, opType: 'QuantizeLinear', input: [t, s, z], output: [`${t}/q`] });
  };
  for (const input of source.input ?? []) if (params.has(input.name!)) emitQ(input.name!);
  for (const node of nodes) {
    node.input.forEach((name, i) => {
      if (!params.has(name)) return;
      const dq = `${name}/dq${++e.count}`;
      e.nodes.push({ name: dq, opType: 'DequantizeLinear', input: [`${name}/q`, `${name}/scale`, `${name}/zero`], output: [dq] });
      node.input[i] = dq;
    });
    const target = targets.get(node);
    if (target && target.weightAxis >= 0) quantizeWeights(e, target, inits, params.get(node.input[0]!.replace(/\/dq\d+$/, ''))!.scale);
    e.nodes.push(node);
    for (const out of node.output) if (params.has(out)) emitQ(out);
  }
  const read = new Set(e.nodes.flatMap((n) => n.input ?? []));
  const kept = (source.initializer ?? []).filter((t) => read.has(t.name!) || graphOutputs.has(t.name!));
  return withGraph(model, { ...source, node: e.nodes, initializer: [...kept, ...e.inits], valueInfo: [] });
}
