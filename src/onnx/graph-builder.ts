// A small ONNX graph builder: inputs, outputs, initializers and nodes with typed attributes, producing a ModelProto.
import {
  onnx,
  elemTypeCode,
  type ElemType,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
  type AttributeProto,
  type GraphProto,
} from './proto.js';

/** Attribute values are tagged so that 1.0 (float) and 1 (int) cannot be confused. */
export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorProto };

export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  ints: (value: readonly number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): AttrValue => ({ kind: 'floats', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  tensor: (value: TensorProto): AttrValue => ({ kind: 'tensor', value }),
};

const A = onnx.AttributeProto.AttributeType;

export function toAttributeProto(name: string, v: AttrValue): AttributeProto {
  switch (v.kind) {
    case 'int':
      return { name, type: A.INT, i: v.value };
    case 'float':
      return { name, type: A.FLOAT, f: v.value };
    case 'ints':
      return { name, type: A.INTS, ints: [...v.value] };
    case 'floats':
      return { name, type: A.FLOATS, floats: [...v.value] };
    case 'string':
      return { name, type: A.STRING, s: new TextEncoder().encode(v.value) };
    case 'tensor':
      return { name, type: A.TENSOR, t: v.value };
  }
}

export type TensorData = Float32Array | BigInt64Array | Int32Array | Uint8Array;

export function makeTensor(name: string, data: TensorData, dims: readonly number[]): TensorProto {
  const dataType = data instanceof Float32Array ? 1 : data instanceof BigInt64Array ? 7 : data instanceof Int32Array ? 6 : 2;
  const count = dims.reduce((a, d) => a * d, 1);
  if (count !== data.length) throw new Error(`tensor ${name}: ${data.length} values do not fill dims [${dims.join(',')}]`);
  return { name, dataType, dims: [...dims], rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() };
}

export function makeValueInfo(name: string, elemType: ElemType, dims?: readonly (number | string | null)[]): ValueInfoProto {
  const shape =
    dims === undefined
      ? undefined
      : { dim: dims.map((d) => (typeof d === 'number' && d >= 0 ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})) };
  return { name, type: { tensorType: { elemType: elemTypeCode[elemType], ...(shape ? { shape } : {}) } } };
}

export interface BuildOptions {
  /** Default opset of the ai.onnx domain; 17 has LayerNormalization and is supported by every ORT 1.14+. */
  opset?: number;
  producerName?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** A fresh tensor/node name derived from `base`, never colliding with anything already declared. */
  unique(base: string): string {
    let n = base;
    while (this.used.has(n)) n = `${base}_${++this.counter}`;
    this.used.add(n);
    return n;
  }

  /** Marks names as taken (when wrapping an existing graph). */
  reserve(names: Iterable<string>): void {
    for (const n of names) this.used.add(n);
  }

  input(name: string, dims: readonly (number | string | null)[], elemType: ElemType = 'float32'): string {
    this.used.add(name);
    this.inputs.push(makeValueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, dims?: readonly (number | string | null)[], elemType: ElemType = 'float32'): string {
    this.outputs.push(makeValueInfo(name, elemType, dims));
    return name;
  }

  initializer(base: string, data: TensorData, dims: readonly number[]): string {
    const name = this.unique(base);
    this.initializers.push(makeTensor(name, data, dims));
    return name;
  }

  constF(base: string, values: readonly number[] | Float32Array, dims?: readonly number[]): string {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    return this.initializer(base, data, dims ?? [data.length]);
  }

  constI64(base: string, values: readonly number[], dims?: readonly number[]): string {
    return this.initializer(base, BigInt64Array.from(values.map((v) => BigInt(v))), dims ?? [values.length]);
  }

  /** Adds a node; returns its output names (fresh ones derived from the node name when a count is given). */
  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[] | number = 1,
    attrs: Record<string, AttrValue> = {},
    nameHint?: string,
  ): string[] {
    const nodeName = this.unique(nameHint ?? opType);
    const outs =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, (_, i) => this.unique(outputs === 1 ? `${nodeName}:out` : `${nodeName}:out${i}`))
        : [...outputs];
    for (const o of outs) this.used.add(o);
    this.nodes.push({
      name: nodeName,
      opType,
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => toAttributeProto(k, v)),
    });
    return outs;
  }

  /** Single-output convenience. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, nameHint?: string): string {
    return this.node(opType, inputs, 1, attrs, nameHint)[0]!;
  }

  graph(): GraphProto {
    return { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs };
  }

  build(options: BuildOptions = {}): ModelProto {
    return makeModel(this.graph(), options);
  }
}

export function makeModel(graph: GraphProto, options: BuildOptions = {}): ModelProto {
  return onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: options.opset ?? 17 }],
    producerName: options.producerName ?? 'kt-edge-face',
    producerVersion: '0.1.0',
    graph,
    ...(options.docString ? { docString: options.docString } : {}),
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
}
