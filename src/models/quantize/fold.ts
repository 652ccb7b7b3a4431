// Folds per-channel Mul/Add constants that follow a Conv into its weights and bias (converted batch norms), so that the
// Conv's output feeds its activation or the next QuantizeLinear directly, which the QDQ fusion of ONNX Runtime needs.
import { makeTensor } from '../../onnx/graph-builder.js';
import { tensorDims, tensorToFloat32, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from '../../onnx/proto.js';
import { withGraph } from '../../onnx/subgraph.js';

/** Per output channel values of a constant that broadcasts over NCHW only along C (or is a scalar); else undefined. */
function perChannel(t: TensorProto, channels: number): Float32Array | undefined {
  const dims = tensorDims(t);
  const values = tensorToFloat32(t);
  if (values.length === 1) return new Float32Array(channels).fill(values[0]!);
  if (values.length !== channels) return undefined;
  // [C,1,1] or [1,C,1,1]: C must sit three places from the end, the NCHW channel axis.
  const rank = dims.length;
  if (rank < 3 || dims[rank - 3] !== channels || dims.some((d, i) => i !== rank - 3 && d !== 1)) return undefined;
  return values;
}

interface FoldState {
  nodes: NodeProto[];
  inits: Map<string, TensorProto>;
  consumers: Map<string, number>;
  graphOutputs: Set<string>;
}

/** Applies the Mul or Add after `conv` when it is the Conv output's only reader; returns whether it folded. */
function foldOne(state: FoldState, conv: NodeProto, next: NodeProto): boolean {
  const out = conv.output![0]!;
  if (state.graphOutputs.has(out) || state.consumers.get(out) !== 1) return false;
  const constName = next.input!.find((n) => n !== out);
  const constant = constName ? state.inits.get(constName) : undefined;
  const weight = state.inits.get(conv.input![1]!);
  if (!constant || !weight || next.input!.length !== 2) return false;
  const wDims = tensorDims(weight);
  const channels = wDims[0]!;
  const values = perChannel(constant, channels);
  if (!values) return false;
  const w = tensorToFloat32(weight);
  const biasInit = conv.input![2] ? state.inits.get(conv.input![2]) : undefined;
  if (conv.input![2] && !biasInit) return false;
  const bias = biasInit ? tensorToFloat32(biasInit) : new Float32Array(channels);
  if (next.opType === 'Mul') {
    const per = w.length / channels;
    for (let i = 0; i < w.length; i++) w[i]! *= values[Math.floor(i / per)]!;
    for (let c = 0; c < channels; c++) bias[c]! *= values[c]!;
  } else {
    for (let c = 0; c < channels; c++) bias[c]! += values[c]!;
  }
  const wName = `${conv.output![0]}/folded_W`;
  const bName = `${conv.output![0]}/folded_B`;
  state.inits.set(wName, makeTensor(wName, w, wDims));
  state.inits.set(bName, makeTensor(bName, bias, [channels]));
  conv.input = [conv.input![0]!, wName, bName];
  conv.output = [next.output![0]!];
  return true;
}

/**
 * `model` with every Conv -> Mul(const) and Conv -> Add(const) pair merged into the Conv (repeatedly, so Conv -> Mul ->
 * Add folds both). The result computes the same function up to float rounding; initializers no longer read are dropped.
 */
export function foldConvConstants(model: ModelProto): ModelProto {
  const graph = model.graph as GraphProto;
  const state: FoldState = {
    nodes: (graph.node ?? []).map((n) => ({ ...n, input: [...(n.input ?? [])], output: [...(n.output ?? [])] })),
    inits: new Map((graph.initializer ?? []).map((t) => [t.name!, t])),
    consumers: new Map(),
    graphOutputs: new Set((graph.output ?? []).map((o) => o.name!)),
  };
  for (const n of state.nodes) for (const i of n.input ?? []) state.consumers.set(i, (state.consumers.get(i) ?? 0) + 1);
  const removed = new Set<NodeProto>();
  const readerOf = (tensor: string): NodeProto | undefined => state.nodes.find((n) => !removed.has(n) && n.input!.includes(tensor));
  for (const conv of state.nodes) {
    if (conv.opType !== 'Conv' || removed.has(conv)) continue;
    for (;;) {
      const next = readerOf(conv.output![0]!);
      if (!next || (next.opType !== 'Mul' && next.opType !== 'Add') || !foldOne(state, conv, next)) break;
      removed.add(next);
    }
  }
  const nodes = state.nodes.filter((n) => !removed.has(n));
  const read = new Set(nodes.flatMap((n) => n.input ?? []));
  const initializer = [...state.inits.values()].filter((t) => read.has(t.name!) || state.graphOutputs.has(t.name!));
  return withGraph(model, { ...graph, node: nodes, initializer, valueInfo: [] });
}
