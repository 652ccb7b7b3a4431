// fp16 versions for GPU profiles (CUDA / TensorRT): every float initializer stored as float16 and the graph computed in
// float16 between a Cast of the float input and Casts of the outputs back to float, so manifests and callers do not change.
import { InvalidInputError } from '../../core/errors.js';
import { attr, toAttributeProto } from '../../onnx/graph-builder.js';
import { DataType, tensorToFloat32, type GraphProto, type ModelProto, type TensorProto } from '../../onnx/proto.js';
import { withGraph } from '../../onnx/subgraph.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 half from a float (round to nearest even, overflow to infinity, subnormals kept). */
export function toHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = (mant | 0x800000) >>> (1 - e + 13);
    const rest = (mant | 0x800000) & ((1 << (1 - e + 13)) - 1);
    const half = 1 << (1 - e + 12);
    return sign | (m + (rest > half || (rest === half && m & 1) ? 1 : 0));
  }
  const m = mant >>> 13;
  const rest = mant & 0x1fff;
  const rounded = (e << 10) + m + (rest > 0x1000 || (rest === 0x1000 && m & 1) ? 1 : 0);
  return sign | rounded;
}

function halfTensor(t: TensorProto): TensorProto {
  const values = tensorToFloat32(t);
  const half = Uint16Array.from(values, toHalf);
  return { name: t.name!, dataType: DataType.FLOAT16, dims: [...(t.dims ?? [])], rawData: new Uint8Array(half.buffer) };
}

const cast = (input: string, output: string, to: number): NonNullable<GraphProto['node']>[number] => ({
  name: `${output}/cast`,
  opType: 'Cast',
  input: [input],
  output: [output],
  attribute: [toAttributeProto('to', attr.int(to))],
});

/** The fp16 model: same float inputs and outputs (Casts at the edges), float16 weights and arithmetic inside. */
export function toFp16(model: ModelProto): ModelProto {
  const graph = model.graph as GraphProto;
  const isFloat = (v: { type?: { tensorType?: { elemType?: number | null } | null } | null }): boolean =>
    v.type?.tensorType?.elemType === DataType.FLOAT;
  if (!(graph.input ?? []).some(isFloat)) throw new InvalidInputError(`model ${graph.name ?? ''} has no float input to convert to fp16`);
  const rename = new Map<string, string>();
  for (const v of [...(graph.input ?? []), ...(graph.output ?? [])]) if (isFloat(v)) rename.set(v.name!, `${v.name}/fp16`);
  const inputs = new Set((graph.input ?? []).map((v) => v.name!));
  const nodes = (graph.node ?? []).map((n) => ({
    ...n,
    input: (n.input ?? []).map((i) => (inputs.has(i) && rename.has(i) ? rename.get(i)! : i)),
    output: (n.output ?? []).map((o) => rename.get(o) ?? o),
    attribute: (n.attribute ?? []).map((a) =>
      n.opType === 'Cast' && a.name === 'to' && Number(a.i) === DataType.FLOAT ? { ...a, i: DataType.FLOAT16 } : a,
    ),
  }));
  // A graph output read by other nodes too: they read the fp16 tensor.
  for (const n of nodes) n.input = n.input.map((i) => (!inputs.has(i) && rename.has(i) ? rename.get(i)! : i));
  const head = (graph.input ?? []).filter(isFloat).map((v) => cast(v.name!, rename.get(v.name!)!, DataType.FLOAT16));
  const tail = (graph.output ?? []).filter(isFloat).map((v) => cast(rename.get(v.name!)!, v.name!, DataType.FLOAT));
  const initializer = (graph.initializer ?? []).map((t) => (t.dataType === DataType.FLOAT ? halfTensor(t) : t));
  return withGraph(model, { ...graph, node: [...head, ...nodes, ...tail], initializer, valueInfo: [] });
}
