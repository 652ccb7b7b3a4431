// Converts a TF.js graph model (NHWC) into an ONNX graph (NCHW inside) for the op set of the face models we ship.
import { UnsupportedOpError, ModelFormatError } from '../core/errors.js';
import { GraphBuilder, attr } from './graph-builder.js';
import type { ModelProto } from './proto.js';
import type { TfjsGraphModel, TfjsNodeDef } from './tfjs-artifacts.js';
import { opHandlers, parseRef, shapeOf, type ConstValues, type ConversionContext, type Converted } from './tfjs-ops/index.js';

export interface ConvertOptions {
  /** ONNX graph name. */
  graphName?: string;
  /** Output tensors (TF names, ':0' optional). Default: the signature outputs, else every unconsumed node. */
  outputs?: string[];
  /** Intermediate TF tensors to expose as extra graph outputs in ONNX-native layout (NCHW for feature maps), optionally renamed. */
  extraOutputs?: (string | { tensor: string; as: string })[];
  /** Batch dimension of the ONNX input: a number for fixed, a string for symbolic. Default: as in the TF graph. */
  batch?: number | string;
  opset?: number;
}

export interface ConvertResult {
  model: ModelProto;
  inputName: string;
  /** TF input shape (NHWC) with the batch dimension as declared. */
  inputShape: (number | string)[];
  /** ONNX output names in order; equal to the TF names without ':0'. */
  outputNames: string[];
  /** Extra outputs: TF name -> ONNX tensor name and its layout. */
  extra: Record<string, { name: string; layout: 'NCHW' | 'plain' }>;
  /** Every op type met, with counts (for reports). */
  opCounts: Record<string, number>;
}

/** Keeps the TF-tensor -> ONNX-tensor bookkeeping and layouts; the ops themselves live in ./tfjs-ops. */
class Converter implements ConversionContext {
  readonly graph: GraphBuilder;
  private readonly tensors = new Map<string, Converted>();
  private readonly nodes = new Map<string, TfjsNodeDef>();
  readonly opCounts: Record<string, number> = {};

  constructor(
    private readonly tf: TfjsGraphModel,
    graphName: string,
  ) {
    this.graph = new GraphBuilder(graphName);
    for (const n of tf.nodes) this.nodes.set(n.name, n);
  }

  constValues(ref: string): ConstValues | undefined {
    const { node } = parseRef(ref);
    const def = this.nodes.get(node);
    if (!def || def.op !== 'Const') return undefined;
    const w = this.tf.weights.get(node);
    if (w) return { values: w.values, shape: w.shape };
    throw new ModelFormatError(`constant ${node} has no value in the weights manifest`);
  }

  requireConst(ref: string, user: TfjsNodeDef): ConstValues {
    const c = this.constValues(ref);
    if (!c) throw new UnsupportedOpError(user.op, user.name, `input ${ref} must be a constant`);
    return c;
  }

  get(ref: string, want: 'nchw-broadcast' | 'plain' = 'plain'): Converted {
    const { node, index } = parseRef(ref);
    const key = index === 0 ? node : `${node}:${index}`;
    const t = this.tensors.get(key);
    if (t) return t;
    const c = this.constValues(ref);
    if (c) {
      const values = c.values instanceof Float32Array ? c.values : Float32Array.from(c.values);
      let dims = c.shape;
      // A per-channel constant ([C] or [1,1,1,C]) meeting an NCHW activation must broadcast over H and W.
      if (want === 'nchw-broadcast') {
        if (dims.length === 1 && dims[0]! > 1) dims = [dims[0]!, 1, 1];
        else if (dims.length === 4) {
          if (dims[0] !== 1 || dims[1] !== 1 || dims[2] !== 1)
            throw new ModelFormatError(`constant ${node} of shape [${dims}] cannot broadcast against NCHW`);
          dims = [1, dims[3]!, 1, 1];
        } else if (dims.length === 3) {
          if (dims[0] !== 1 || dims[1] !== 1)
            throw new ModelFormatError(`constant ${node} of shape [${dims}] cannot broadcast against NCHW`);
          dims = [dims[2]!, 1, 1];
        }
        const name = this.graph.initializer(`${node}/nchw`, values, dims);
        return { name, layout: 'plain' };
      }
      const name = this.graph.initializer(node, values, dims);
      const conv: Converted = { name, layout: 'plain' };
      this.tensors.set(key, conv);
      return conv;
    }
    throw new ModelFormatError(`tensor ${ref} is used before it is produced (graph not topologically sorted?)`);
  }

  set(node: TfjsNodeDef, name: string, layout: Converted['layout'], index = 0): void {
    this.tensors.set(index === 0 ? node.name : `${node.name}:${index}`, { name, layout });
  }

  toTfLayout(t: Converted): string {
    return t.layout === 'nchw' ? this.graph.op('Transpose', [t.name], { perm: attr.ints([0, 2, 3, 1]) }, 'to_nhwc') : t.name;
  }

  isActivation(ref: string): boolean {
    return this.nodes.get(parseRef(ref).node)?.op !== 'Const';
  }

  toNchw(name: string): string {
    return this.graph.op('Transpose', [name], { perm: attr.ints([0, 3, 1, 2]) }, 'to_nchw');
  }

  axis(t: Converted, tfAxis: number, rank: number): number {
    const a = tfAxis < 0 ? tfAxis + rank : tfAxis;
    if (t.layout !== 'nchw') return a;
    return [0, 2, 3, 1][a]!;
  }

  /** Converts one TF node through the op-handler table; an op without a handler throws UnsupportedOpError. */
  convertNode(n: TfjsNodeDef): void {
    this.opCounts[n.op] = (this.opCounts[n.op] ?? 0) + 1;
    const handler = Object.hasOwn(opHandlers, n.op) ? opHandlers[n.op] : undefined;
    if (!handler) throw new UnsupportedOpError(n.op, n.name);
    handler(
      this,
      n,
      (n.input ?? []).filter((r) => !parseRef(r).control),
    );
  }

  convert(options: ConvertOptions): ConvertResult {
    const placeholders = this.tf.nodes.filter((n) => n.op === 'Placeholder');
    if (placeholders.length !== 1)
      throw new ModelFormatError(`${this.tf.path}: expected one input placeholder, found ${placeholders.length}`);
    const ph = placeholders[0]!;
    const tfShape = shapeOf(ph.attr?.['shape']);
    if (tfShape.length !== 4) throw new ModelFormatError(`${this.tf.path}: input ${ph.name} is not rank 4 (NHWC)`);
    const batch = options.batch ?? (Number(tfShape[0]) > 0 ? Number(tfShape[0]) : 'N');
    const inputShape = [batch, ...tfShape.slice(1)];
    this.graph.input(ph.name, inputShape);
    this.tensors.set(ph.name, { name: this.toNchw(ph.name), layout: 'nchw' });

    for (const n of this.tf.nodes) if (n.op !== 'Placeholder') this.convertNode(n);

    const outputs = options.outputs ?? this.defaultOutputs();
    const outputNames: string[] = [];
    for (const o of outputs) {
      const ref = o.replace(/:0$/, '');
      const t = this.tensors.get(ref);
      if (!t) throw new ModelFormatError(`output ${o} is not a tensor of ${this.tf.path}`);
      const name = ref;
      this.graph.node('Identity', [this.toTfLayout(t)], [name], {}, `output/${name}`);
      this.graph.output(name);
      outputNames.push(name);
    }
    const extra: ConvertResult['extra'] = {};
    for (const spec of options.extraOutputs ?? []) {
      const e = typeof spec === 'string' ? spec : spec.tensor;
      const ref = e.replace(/:0$/, '');
      const t = this.tensors.get(ref);
      if (!t) throw new ModelFormatError(`extra output ${e} is not a tensor of ${this.tf.path}`);
      const name = typeof spec === 'string' ? `features/${ref}` : spec.as;
      this.graph.node('Identity', [t.name], [name], {}, `output/${name}`);
      this.graph.output(name);
      extra[e] = { name, layout: t.layout === 'nchw' ? 'NCHW' : 'plain' };
    }
    return {
      model: this.graph.build({
        ...(options.opset !== undefined ? { opset: options.opset } : {}),
        docString: `converted from TF.js graph model ${this.tf.path}`,
      }),
      inputName: ph.name,
      inputShape,
      outputNames,
      extra,
      opCounts: this.opCounts,
    };
  }

  private defaultOutputs(): string[] {
    const sig = this.tf.signature?.outputs;
    if (sig && Object.keys(sig).length > 0) return Object.values(sig).map((s) => s.name);
    const consumed = new Set<string>();
    for (const n of this.tf.nodes) for (const r of n.input ?? []) consumed.add(parseRef(r).node);
    return this.tf.nodes.filter((n) => n.op !== 'Const' && n.op !== 'Placeholder' && !consumed.has(n.name)).map((n) => n.name);
  }
}

/** Converts a TF.js graph model; an unsupported op throws UnsupportedOpError naming the op and the node. */
export function convertTfjsGraph(tf: TfjsGraphModel, options: ConvertOptions = {}): ConvertResult {
  return new Converter(tf, options.graphName ?? 'converted').convert(options);
}
