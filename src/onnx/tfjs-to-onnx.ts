// Converts a TF.js graph model (NHWC) into an ONNX graph (NCHW inside) for the op set of the face models we ship.
import { UnsupportedOpError, ModelFormatError } from '../core/errors.js';
import { GraphBuilder, attr, type AttrValue } from './graph-builder.js';
import type { ModelProto } from './proto.js';
import type { TfjsAttr, TfjsGraphModel, TfjsNodeDef } from './tfjs-artifacts.js';

/** Where a TF tensor lives in the ONNX graph: rank-4 activations are kept NCHW, everything else as TF has it. */
interface Converted {
  name: string;
  layout: 'nchw' | 'plain';
}

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

const decodeB64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');
const attrString = (n: TfjsNodeDef, key: string): string => decodeB64(n.attr?.[key]?.s);
const attrInts = (n: TfjsNodeDef, key: string): number[] => (n.attr?.[key]?.list?.i ?? []).map(Number);
const attrStrings = (n: TfjsNodeDef, key: string): string[] => (n.attr?.[key]?.list?.s ?? []).map(decodeB64);
const attrBool = (n: TfjsNodeDef, key: string): boolean => n.attr?.[key]?.b === true;
const attrFloat = (n: TfjsNodeDef, key: string, dflt: number): number => (n.attr?.[key]?.f ?? dflt);
const attrInt = (n: TfjsNodeDef, key: string, dflt: number): number => (n.attr?.[key]?.i !== undefined ? Number(n.attr[key]!.i) : dflt);

function shapeOf(a: TfjsAttr | undefined): (number | string)[] {
  return (a?.shape?.dim ?? []).map((d) => Number(d.size));
}

/** TF tensor reference "node", "node:1" or "^node" (control). */
function parseRef(ref: string): { node: string; index: number; control: boolean } {
  if (ref.startsWith('^')) return { node: ref.slice(1), index: 0, control: true };
  const m = /^(.*):(\d+)$/.exec(ref);
  return m ? { node: m[1]!, index: Number(m[2]), control: false } : { node: ref, index: 0, control: false };
}

/** TF HWIO conv filter -> ONNX OIHW. */
function hwioToOihw(values: Float32Array, [kh, kw, cin, cout]: number[]): Float32Array {
  const out = new Float32Array(values.length);
  for (let h = 0; h < kh!; h++) for (let w = 0; w < kw!; w++) for (let i = 0; i < cin!; i++) for (let o = 0; o < cout!; o++) {
    out[((o * cin! + i) * kh! + h) * kw! + w] = values[((h * kw! + w) * cin! + i) * cout! + o]!;
  }
  return out;
}

/** TF depthwise filter [kh, kw, cin, mult] -> ONNX grouped conv weight [cin*mult, 1, kh, kw]. */
function depthwiseToOnnx(values: Float32Array, [kh, kw, cin, mult]: number[]): Float32Array {
  const out = new Float32Array(values.length);
  for (let h = 0; h < kh!; h++) for (let w = 0; w < kw!; w++) for (let i = 0; i < cin!; i++) for (let m = 0; m < mult!; m++) {
    out[((i * mult! + m) * kh! + h) * kw! + w] = values[((h * kw! + w) * cin! + i) * mult! + m]!;
  }
  return out;
}

class Converter {
  readonly b: GraphBuilder;
  private readonly tensors = new Map<string, Converted>();
  private readonly nodes = new Map<string, TfjsNodeDef>();
  readonly opCounts: Record<string, number> = {};

  constructor(private readonly tf: TfjsGraphModel, graphName: string) {
    this.b = new GraphBuilder(graphName);
    for (const n of tf.nodes) this.nodes.set(n.name, n);
  }

  private constValues(ref: string): { values: Float32Array | Int32Array; shape: number[] } | undefined {
    const { node } = parseRef(ref);
    const def = this.nodes.get(node);
    if (!def || def.op !== 'Const') return undefined;
    const w = this.tf.weights.get(node);
    if (w) return { values: w.values, shape: w.shape };
    throw new ModelFormatError(`constant ${node} has no value in the weights manifest`);
  }

  private requireConst(ref: string, user: TfjsNodeDef): { values: Float32Array | Int32Array; shape: number[] } {
    const c = this.constValues(ref);
    if (!c) throw new UnsupportedOpError(user.op, user.name, `input ${ref} must be a constant`);
    return c;
  }

  /** The ONNX tensor for a TF reference; constants are materialised on first use in the layout the user needs. */
  private get(ref: string, want: 'nchw-broadcast' | 'plain' = 'plain'): Converted {
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
          if (dims[0] !== 1 || dims[1] !== 1 || dims[2] !== 1) throw new ModelFormatError(`constant ${node} of shape [${dims}] cannot broadcast against NCHW`);
          dims = [1, dims[3]!, 1, 1];
        } else if (dims.length === 3) {
          if (dims[0] !== 1 || dims[1] !== 1) throw new ModelFormatError(`constant ${node} of shape [${dims}] cannot broadcast against NCHW`);
          dims = [dims[2]!, 1, 1];
        }
        const name = this.b.initializer(`${node}/nchw`, values, dims);
        return { name, layout: 'plain' };
      }
      const name = this.b.initializer(node, values, dims);
      const conv: Converted = { name, layout: 'plain' };
      this.tensors.set(key, conv);
      return conv;
    }
    throw new ModelFormatError(`tensor ${ref} is used before it is produced (graph not topologically sorted?)`);
  }

  private set(node: TfjsNodeDef, name: string, layout: Converted['layout'], index = 0): void {
    this.tensors.set(index === 0 ? node.name : `${node.name}:${index}`, { name, layout });
  }

  /** Brings a converted tensor back to TF's own layout (NHWC for rank-4). */
  toTfLayout(t: Converted): string {
    return t.layout === 'nchw' ? this.b.op('Transpose', [t.name], { perm: attr.ints([0, 2, 3, 1]) }, 'to_nhwc') : t.name;
  }

  private convAttrs(n: TfjsNodeDef, kernel: [number, number]): Record<string, AttrValue> {
    const strides = attrInts(n, 'strides');
    const dil = attrInts(n, 'dilations');
    const padding = attrString(n, 'padding');
    const fmt = attrString(n, 'data_format') || 'NHWC';
    if (fmt !== 'NHWC') throw new UnsupportedOpError(n.op, n.name, `data_format ${fmt}`);
    const a: Record<string, AttrValue> = {
      kernel_shape: attr.ints(kernel),
      strides: attr.ints(strides.length === 4 ? [strides[1]!, strides[2]!] : [1, 1]),
      dilations: attr.ints(dil.length === 4 ? [dil[1]!, dil[2]!] : [1, 1]),
    };
    if (padding === 'SAME') a['auto_pad'] = attr.string('SAME_UPPER');
    else if (padding === 'VALID') a['pads'] = attr.ints([0, 0, 0, 0]);
    else if (padding === 'EXPLICIT') {
      const p = attrInts(n, 'explicit_paddings'); // [n0,n1,h0,h1,w0,w1,c0,c1]
      a['pads'] = attr.ints([p[2]!, p[4]!, p[3]!, p[5]!]);
    } else throw new UnsupportedOpError(n.op, n.name, `padding ${padding}`);
    return a;
  }

  private activation(n: TfjsNodeDef, x: string, fused: string[], extraArgs: string[]): string {
    let out = x;
    for (const f of fused.slice(1)) {
      if (f === 'Relu') out = this.b.op('Relu', [out]);
      else if (f === 'Relu6') out = this.b.op('Clip', [out, this.b.constF('zero', [0], []), this.b.constF('six', [6], [])]);
      else if (f === 'Elu') out = this.b.op('Elu', [out]);
      else if (f === 'Sigmoid') out = this.b.op('Sigmoid', [out]);
      else if (f === 'Tanh') out = this.b.op('Tanh', [out]);
      else if (f === 'LeakyRelu') out = this.b.op('LeakyRelu', [out], { alpha: attr.float(attrFloat(n, 'leakyrelu_alpha', 0.2)) });
      else if (f === 'Prelu') {
        const alphaRef = extraArgs[1];
        if (!alphaRef) throw new UnsupportedOpError(n.op, n.name, 'Prelu without alpha');
        out = this.b.op('PRelu', [out, this.get(alphaRef, 'nchw-broadcast').name]);
      } else throw new UnsupportedOpError(n.op, n.name, `fused activation ${f}`);
    }
    return out;
  }

  private fusedConv(n: TfjsNodeDef, depthwise: boolean): void {
    const inputs = (n.input ?? []).filter((r) => !parseRef(r).control);
    const x = this.get(inputs[0]!);
    if (x.layout !== 'nchw') throw new UnsupportedOpError(n.op, n.name, 'input is not a rank-4 activation');
    const f = this.requireConst(inputs[1]!, n);
    const fvals = f.values instanceof Float32Array ? f.values : Float32Array.from(f.values);
    const [kh, kw, cin, cout] = f.shape as [number, number, number, number];
    const fused = n.op === '_FusedConv2D' ? attrStrings(n, 'fused_ops') : [];
    if (fused.length > 0 && fused[0] !== 'BiasAdd') throw new UnsupportedOpError(n.op, n.name, `fused ops ${fused.join(',')}`);
    const w = depthwise
      ? this.b.initializer(`${n.name}/weight`, depthwiseToOnnx(fvals, f.shape), [cin * cout, 1, kh, kw])
      : this.b.initializer(`${n.name}/weight`, hwioToOihw(fvals, f.shape), [cout, cin, kh, kw]);
    const convInputs = [x.name, w];
    const args = inputs.slice(2);
    if (fused[0] === 'BiasAdd') {
      const bias = this.requireConst(args[0]!, n);
      convInputs.push(this.b.initializer(`${n.name}/bias`, Float32Array.from(bias.values), [bias.values.length]));
    }
    const a = this.convAttrs(n, [kh, kw]);
    if (depthwise) a['group'] = attr.int(cin);
    const y = this.b.op('Conv', convInputs, a, n.name);
    this.set(n, this.activation(n, y, fused, args), 'nchw');
  }

  private binary(n: TfjsNodeDef, onnxOp: string): void {
    const [ra, rb] = (n.input ?? []).filter((r) => !parseRef(r).control) as [string, string];
    // Activations first: their layout decides how a constant operand must be shaped.
    let a = this.isActivation(ra) ? this.get(ra) : undefined;
    let b = this.isActivation(rb) ? this.get(rb) : undefined;
    const anyNchw = a?.layout === 'nchw' || b?.layout === 'nchw';
    a ??= this.get(ra, anyNchw ? 'nchw-broadcast' : 'plain');
    b ??= this.get(rb, anyNchw ? 'nchw-broadcast' : 'plain');
    if (a.layout !== b.layout && a.layout === 'nchw' && this.isActivation(rb)) b = { name: this.toNchw(b.name), layout: 'nchw' };
    if (a.layout !== b.layout && b.layout === 'nchw' && this.isActivation(ra)) a = { name: this.toNchw(a.name), layout: 'nchw' };
    this.set(n, this.b.op(onnxOp, [a.name, b.name], {}, n.name), anyNchw ? 'nchw' : 'plain');
  }

  private isActivation(ref: string): boolean {
    return this.nodes.get(parseRef(ref).node)?.op !== 'Const';
  }

  private toNchw(name: string): string {
    return this.b.op('Transpose', [name], { perm: attr.ints([0, 3, 1, 2]) }, 'to_nchw');
  }

  private unary(n: TfjsNodeDef, onnxOp: string, attrs: Record<string, AttrValue> = {}): void {
    const x = this.get(n.input![0]!);
    this.set(n, this.b.op(onnxOp, [x.name], attrs, n.name), x.layout);
  }

  /** Axis of a TF tensor mapped into the converted layout. */
  private axis(t: Converted, tfAxis: number, rank: number): number {
    const a = tfAxis < 0 ? tfAxis + rank : tfAxis;
    if (t.layout !== 'nchw') return a;
    return [0, 2, 3, 1][a]!;
  }

  convertNode(n: TfjsNodeDef): void {
    this.opCounts[n.op] = (this.opCounts[n.op] ?? 0) + 1;
    const inputs = (n.input ?? []).filter((r) => !parseRef(r).control);
    switch (n.op) {
      case 'Const':
      case 'NoOp':
        return;
      case 'Placeholder':
        throw new ModelFormatError(`unexpected placeholder ${n.name}`);
      case 'Identity':
      case 'StopGradient': {
        const x = this.get(inputs[0]!);
        this.tensors.set(n.name, x);
        return;
      }
      case 'Conv2D':
      case '_FusedConv2D':
        return this.fusedConv(n, false);
      case 'DepthwiseConv2dNative':
      case 'FusedDepthwiseConv2dNative':
        return this.fusedConv(n, true);
      case 'Add':
      case 'AddV2':
      case 'BiasAdd':
        return this.binary(n, 'Add');
      case 'Sub':
        return this.binary(n, 'Sub');
      case 'Mul':
        return this.binary(n, 'Mul');
      case 'RealDiv':
      case 'Div':
        return this.binary(n, 'Div');
      case 'Maximum':
        return this.binary(n, 'Max');
      case 'Minimum':
        return this.binary(n, 'Min');
      case 'Relu':
        return this.unary(n, 'Relu');
      case 'Relu6': {
        const x = this.get(inputs[0]!);
        this.set(n, this.b.op('Clip', [x.name, this.b.constF('zero', [0], []), this.b.constF('six', [6], [])], {}, n.name), x.layout);
        return;
      }
      case 'Sigmoid':
        return this.unary(n, 'Sigmoid');
      case 'Tanh':
        return this.unary(n, 'Tanh');
      case 'Abs':
        return this.unary(n, 'Abs');
      case 'Elu':
        return this.unary(n, 'Elu');
      case 'Square': {
        const x = this.get(inputs[0]!);
        this.set(n, this.b.op('Mul', [x.name, x.name], {}, n.name), x.layout);
        return;
      }
      case 'Rsqrt': {
        const x = this.get(inputs[0]!);
        const s = this.b.op('Sqrt', [x.name]);
        this.set(n, this.b.op('Reciprocal', [s], {}, n.name), x.layout);
        return;
      }
      case 'Prelu': {
        const x = this.get(inputs[0]!);
        const alpha = this.get(inputs[1]!, x.layout === 'nchw' ? 'nchw-broadcast' : 'plain');
        this.set(n, this.b.op('PRelu', [x.name, alpha.name], {}, n.name), x.layout);
        return;
      }
      case 'Softmax': {
        const x = this.get(inputs[0]!);
        if (x.layout === 'nchw') throw new UnsupportedOpError(n.op, n.name, 'softmax over a rank-4 activation');
        this.set(n, this.b.op('Softmax', [x.name], { axis: attr.int(-1) }, n.name), 'plain');
        return;
      }
      case 'MaxPool':
      case 'AvgPool': {
        const x = this.get(inputs[0]!);
        if (x.layout !== 'nchw') throw new UnsupportedOpError(n.op, n.name, 'input is not a rank-4 activation');
        const k = attrInts(n, 'ksize');
        const a = this.convAttrs({ ...n, attr: { ...n.attr, dilations: { list: { i: [1, 1, 1, 1] } } } }, [k[1]!, k[2]!]);
        delete a['dilations'];
        this.set(n, this.b.op(n.op === 'MaxPool' ? 'MaxPool' : 'AveragePool', [x.name], a, n.name), 'nchw');
        return;
      }
      case 'Mean':
      case 'Sum':
      case 'Max': {
        const x = this.get(inputs[0]!);
        const axes = Array.from(this.requireConst(inputs[1]!, n).values);
        const keep = attrBool(n, 'keep_dims');
        const rank = x.layout === 'nchw' ? 4 : -1;
        if (rank < 0 && axes.some((a) => a < 0)) throw new UnsupportedOpError(n.op, n.name, 'negative axes on a tensor of unknown rank');
        const mapped = axes.map((a) => this.axis(x, a, 4));
        const op = n.op === 'Mean' ? 'ReduceMean' : n.op === 'Sum' ? 'ReduceSum' : 'ReduceMax';
        // opset 13+: ReduceSum takes axes as an input, ReduceMean/ReduceMax still as an attribute until opset 18.
        const y = op === 'ReduceSum'
          ? this.b.op(op, [x.name, this.b.constI64('axes', mapped)], { keepdims: attr.int(keep ? 1 : 0) }, n.name)
          : this.b.op(op, [x.name], { axes: attr.ints(mapped), keepdims: attr.int(keep ? 1 : 0) }, n.name);
        // Reducing H and W of NCHW without keepdims leaves [N, C]: the same as TF's result.
        const spatialOnly = x.layout === 'nchw' && !keep && axes.length === 2 && mapped.every((a) => a === 2 || a === 3);
        if (x.layout === 'nchw' && keep) this.set(n, y, 'nchw');
        else if (x.layout !== 'nchw' || spatialOnly) this.set(n, y, 'plain');
        else throw new UnsupportedOpError(n.op, n.name, `reduction over axes [${axes}] of an NCHW activation`);
        return;
      }
      case 'Reshape': {
        const x = this.get(inputs[0]!);
        const shape = Array.from(this.requireConst(inputs[1]!, n).values);
        const y = this.b.op('Reshape', [this.toTfLayout(x), this.b.constI64(`${n.name}/shape`, shape)], {}, n.name);
        this.set(n, y, 'plain');
        return;
      }
      case 'Pad':
      case 'PadV2':
      case 'MirrorPad': {
        const x = this.get(inputs[0]!);
        const p = Array.from(this.requireConst(inputs[1]!, n).values); // [[b0,a0],[b1,a1],...]
        const rank = p.length / 2;
        const order = x.layout === 'nchw' ? [0, 3, 1, 2] : Array.from({ length: rank }, (_, i) => i);
        const pads = [...order.map((d) => p[2 * d]!), ...order.map((d) => p[2 * d + 1]!)];
        const padInputs = [x.name, this.b.constI64(`${n.name}/pads`, pads)];
        if (n.op === 'PadV2') padInputs.push(this.get(inputs[2]!).name);
        const mode = n.op === 'MirrorPad' ? (attrString(n, 'mode').toLowerCase() === 'symmetric' ? 'edge' : 'reflect') : 'constant';
        if (n.op === 'MirrorPad' && attrString(n, 'mode').toLowerCase() === 'symmetric') throw new UnsupportedOpError(n.op, n.name, 'SYMMETRIC mirror padding');
        this.set(n, this.b.op('Pad', padInputs, { mode: attr.string(mode) }, n.name), x.layout);
        return;
      }
      case 'ConcatV2': {
        const parts = inputs.slice(0, -1).map((r) => this.get(r));
        const axisVal = Number(this.requireConst(inputs[inputs.length - 1]!, n).values[0]);
        const allNchw = parts.every((p) => p.layout === 'nchw');
        const names = allNchw ? parts.map((p) => p.name) : parts.map((p) => this.toTfLayout(p));
        const axis = allNchw ? this.axis(parts[0]!, axisVal, 4) : axisVal;
        this.set(n, this.b.op('Concat', names, { axis: attr.int(axis) }, n.name), allNchw ? 'nchw' : 'plain');
        return;
      }
      case 'ExpandDims': {
        const x = this.get(inputs[0]!);
        const ax = Number(this.requireConst(inputs[1]!, n).values[0]);
        this.set(n, this.b.op('Unsqueeze', [this.toTfLayout(x), this.b.constI64('axes', [ax])], {}, n.name), 'plain');
        return;
      }
      case 'MatMul':
      case '_FusedMatMul': {
        const a = this.get(inputs[0]!);
        if (a.layout === 'nchw') throw new UnsupportedOpError(n.op, n.name, 'matmul on a rank-4 activation');
        const bConst = this.constValues(inputs[1]!);
        const ta = attrBool(n, 'transpose_a');
        const tb = attrBool(n, 'transpose_b');
        const left = ta ? this.b.op('Transpose', [a.name], { perm: attr.ints([1, 0]) }) : a.name;
        let right: string;
        if (bConst) {
          const [r, c] = bConst.shape as [number, number];
          const v = Float32Array.from(bConst.values);
          if (tb) {
            const t = new Float32Array(v.length);
            for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = v[i * c + j]!;
            right = this.b.initializer(`${n.name}/weight`, t, [c, r]);
          } else right = this.b.initializer(`${n.name}/weight`, v, [r, c]);
        } else {
          const bt = this.get(inputs[1]!).name;
          right = tb ? this.b.op('Transpose', [bt], { perm: attr.ints([1, 0]) }) : bt;
        }
        let y = this.b.op('MatMul', [left, right], {}, n.name);
        const fused = n.op === '_FusedMatMul' ? attrStrings(n, 'fused_ops') : [];
        if (fused.length > 0) {
          if (fused[0] !== 'BiasAdd') throw new UnsupportedOpError(n.op, n.name, `fused ops ${fused.join(',')}`);
          const bias = this.requireConst(inputs[2]!, n);
          y = this.b.op('Add', [y, this.b.initializer(`${n.name}/bias`, Float32Array.from(bias.values), [bias.values.length])]);
          y = this.activation(n, y, fused, inputs.slice(2));
        }
        this.set(n, y, 'plain');
        return;
      }
      case 'StridedSlice': {
        const x = this.get(inputs[0]!);
        const begin = Array.from(this.requireConst(inputs[1]!, n).values);
        const end = Array.from(this.requireConst(inputs[2]!, n).values);
        const strides = Array.from(this.requireConst(inputs[3]!, n).values);
        const beginMask = attrInt(n, 'begin_mask', 0);
        const endMask = attrInt(n, 'end_mask', 0);
        if (attrInt(n, 'ellipsis_mask', 0) || attrInt(n, 'new_axis_mask', 0)) throw new UnsupportedOpError(n.op, n.name, 'ellipsis or new-axis mask');
        const shrink = attrInt(n, 'shrink_axis_mask', 0);
        const src = this.toTfLayout(x);
        const big = 2 ** 31 - 1;
        const starts = begin.map((v, i) => (beginMask & (1 << i) ? (strides[i]! > 0 ? 0 : big) : v));
        const ends = end.map((v, i) => (endMask & (1 << i) ? (strides[i]! > 0 ? big : -big) : shrink & (1 << i) ? begin[i]! + 1 : v));
        const axes = begin.map((_, i) => i);
        let y = this.b.op('Slice', [src, this.b.constI64('starts', starts), this.b.constI64('ends', ends), this.b.constI64('axes', axes), this.b.constI64('steps', strides)], {}, n.name);
        const shrunk = axes.filter((i) => shrink & (1 << i));
        if (shrunk.length) y = this.b.op('Squeeze', [y, this.b.constI64('axes', shrunk)]);
        this.set(n, y, 'plain');
        return;
      }
      default:
        throw new UnsupportedOpError(n.op, n.name);
    }
  }

  convert(options: ConvertOptions): ConvertResult {
    const placeholders = this.tf.nodes.filter((n) => n.op === 'Placeholder');
    if (placeholders.length !== 1) throw new ModelFormatError(`${this.tf.path}: expected one input placeholder, found ${placeholders.length}`);
    const ph = placeholders[0]!;
    const tfShape = shapeOf(ph.attr?.['shape']);
    if (tfShape.length !== 4) throw new ModelFormatError(`${this.tf.path}: input ${ph.name} is not rank 4 (NHWC)`);
    const batch = options.batch ?? (Number(tfShape[0]) > 0 ? Number(tfShape[0]) : 'N');
    const inputShape = [batch, ...tfShape.slice(1)];
    this.b.input(ph.name, inputShape);
    this.tensors.set(ph.name, { name: this.toNchw(ph.name), layout: 'nchw' });

    for (const n of this.tf.nodes) if (n.op !== 'Placeholder') this.convertNode(n);

    const outputs = options.outputs ?? this.defaultOutputs();
    const outputNames: string[] = [];
    for (const o of outputs) {
      const ref = o.replace(/:0$/, '');
      const t = this.tensors.get(ref);
      if (!t) throw new ModelFormatError(`output ${o} is not a tensor of ${this.tf.path}`);
      const name = ref;
      this.b.node('Identity', [this.toTfLayout(t)], [name], {}, `output/${name}`);
      this.b.output(name);
      outputNames.push(name);
    }
    const extra: ConvertResult['extra'] = {};
    for (const spec of options.extraOutputs ?? []) {
      const e = typeof spec === 'string' ? spec : spec.tensor;
      const ref = e.replace(/:0$/, '');
      const t = this.tensors.get(ref);
      if (!t) throw new ModelFormatError(`extra output ${e} is not a tensor of ${this.tf.path}`);
      const name = typeof spec === 'string' ? `features/${ref}` : spec.as;
      this.b.node('Identity', [t.name], [name], {}, `output/${name}`);
      this.b.output(name);
      extra[e] = { name, layout: t.layout === 'nchw' ? 'NCHW' : 'plain' };
    }
    return {
      model: this.b.build({ ...(options.opset !== undefined ? { opset: options.opset } : {}), docString: `converted from TF.js graph model ${this.tf.path}` }),
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
