// Op handlers for convolutions (plain, fused, depthwise), pooling, and the fused activations they share with MatMul.
import { UnsupportedOpError } from '../../core/errors.js';
import { attr, type AttrValue } from '../graph-builder.js';
import type { TfjsNodeDef } from '../tfjs-artifacts.js';
import { attrFloat, attrInts, attrString, attrStrings } from './attrs.js';
import type { ConversionContext, OpHandler } from './types.js';

/** TF HWIO conv filter -> ONNX OIHW. */
function hwioToOihw(values: Float32Array, [kh, kw, cin, cout]: number[]): Float32Array {
  const out = new Float32Array(values.length);
  for (let h = 0; h < kh!; h++)
    for (let w = 0; w < kw!; w++)
      for (let i = 0; i < cin!; i++)
        for (let o = 0; o < cout!; o++) {
          out[((o * cin! + i) * kh! + h) * kw! + w] = values[((h * kw! + w) * cin! + i) * cout! + o]!;
        }
  return out;
}

/** TF depthwise filter [kh, kw, cin, mult] -> ONNX grouped conv weight [cin*mult, 1, kh, kw]. */
function depthwiseToOnnx(values: Float32Array, [kh, kw, cin, mult]: number[]): Float32Array {
  const out = new Float32Array(values.length);
  for (let h = 0; h < kh!; h++)
    for (let w = 0; w < kw!; w++)
      for (let i = 0; i < cin!; i++)
        for (let m = 0; m < mult!; m++) {
          out[((i * mult! + m) * kh! + h) * kw! + w] = values[((h * kw! + w) * cin! + i) * mult! + m]!;
        }
  return out;
}

/** ONNX Conv/Pool attributes from TF's NHWC strides, dilations and padding. */
function convAttrs(n: TfjsNodeDef, kernel: [number, number]): Record<string, AttrValue> {
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

/** Applies the activations listed after BiasAdd in a fused op's `fused_ops`; `extraArgs[1]` is PReLU's alpha. */
export function fusedActivation(cx: ConversionContext, n: TfjsNodeDef, x: string, fused: string[], extraArgs: string[]): string {
  const g = cx.graph;
  let out = x;
  for (const f of fused.slice(1)) {
    if (f === 'Relu') out = g.op('Relu', [out]);
    else if (f === 'Relu6') out = g.op('Clip', [out, g.constF('zero', [0], []), g.constF('six', [6], [])]);
    else if (f === 'Elu') out = g.op('Elu', [out]);
    else if (f === 'Sigmoid') out = g.op('Sigmoid', [out]);
    else if (f === 'Tanh') out = g.op('Tanh', [out]);
    else if (f === 'LeakyRelu') out = g.op('LeakyRelu', [out], { alpha: attr.float(attrFloat(n, 'leakyrelu_alpha', 0.2)) });
    else if (f === 'Prelu') {
      const alphaRef = extraArgs[1];
      if (!alphaRef) throw new UnsupportedOpError(n.op, n.name, 'Prelu without alpha');
      out = g.op('PRelu', [out, cx.get(alphaRef, 'nchw-broadcast').name]);
    } else throw new UnsupportedOpError(n.op, n.name, `fused activation ${f}`);
  }
  return out;
}

/** Conv2D / _FusedConv2D (depthwise = false) and the depthwise variants, with an optional fused bias and activation. */
function convolution(depthwise: boolean): OpHandler {
  return (cx, n, inputs) => {
    const x = cx.get(inputs[0]!);
    if (x.layout !== 'nchw') throw new UnsupportedOpError(n.op, n.name, 'input is not a rank-4 activation');
    const f = cx.requireConst(inputs[1]!, n);
    const fvals = f.values instanceof Float32Array ? f.values : Float32Array.from(f.values);
    const [kh, kw, cin, cout] = f.shape as [number, number, number, number];
    const fused = n.op === '_FusedConv2D' ? attrStrings(n, 'fused_ops') : [];
    if (fused.length > 0 && fused[0] !== 'BiasAdd') throw new UnsupportedOpError(n.op, n.name, `fused ops ${fused.join(',')}`);
    const w = depthwise
      ? cx.graph.initializer(`${n.name}/weight`, depthwiseToOnnx(fvals, f.shape), [cin * cout, 1, kh, kw])
      : cx.graph.initializer(`${n.name}/weight`, hwioToOihw(fvals, f.shape), [cout, cin, kh, kw]);
    const convInputs = [x.name, w];
    const args = inputs.slice(2);
    if (fused[0] === 'BiasAdd') {
      const bias = cx.requireConst(args[0]!, n);
      convInputs.push(cx.graph.initializer(`${n.name}/bias`, Float32Array.from(bias.values), [bias.values.length]));
    }
    const a = convAttrs(n, [kh, kw]);
    if (depthwise) a['group'] = attr.int(cin);
    const y = cx.graph.op('Conv', convInputs, a, n.name);
    cx.set(n, fusedActivation(cx, n, y, fused, args), 'nchw');
  };
}

/** MaxPool and AvgPool over an NCHW activation. */
const pool: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  if (x.layout !== 'nchw') throw new UnsupportedOpError(n.op, n.name, 'input is not a rank-4 activation');
  const k = attrInts(n, 'ksize');
  const a = convAttrs({ ...n, attr: { ...n.attr, dilations: { list: { i: [1, 1, 1, 1] } } } }, [k[1]!, k[2]!]);
  delete a['dilations'];
  cx.set(n, cx.graph.op(n.op === 'MaxPool' ? 'MaxPool' : 'AveragePool', [x.name], a, n.name), 'nchw');
};

export const convOps: Record<string, OpHandler> = {
  Conv2D: convolution(false),
  _FusedConv2D: convolution(false),
  DepthwiseConv2dNative: convolution(true),
  FusedDepthwiseConv2dNative: convolution(true),
  MaxPool: pool,
  AvgPool: pool,
};
