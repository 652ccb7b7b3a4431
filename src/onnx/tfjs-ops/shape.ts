// Op handlers that move or select data without arithmetic: Reshape, Pad, ConcatV2, ExpandDims, StridedSlice.
import { UnsupportedOpError } from '../../core/errors.js';
import { attr } from '../graph-builder.js';
import { attrInt, attrString } from './attrs.js';
import type { OpHandler } from './types.js';

/** TF reshapes in its own layout, so an NCHW activation goes back to NHWC first. */
const reshape: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  const shape = Array.from(cx.requireConst(inputs[1]!, n).values);
  const y = cx.graph.op('Reshape', [cx.toTfLayout(x), cx.graph.constI64(`${n.name}/shape`, shape)], {}, n.name);
  cx.set(n, y, 'plain');
};

/** Pad, PadV2 (constant value) and MirrorPad (REFLECT only; ONNX has no SYMMETRIC mode). */
const pad: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  const p = Array.from(cx.requireConst(inputs[1]!, n).values); // [[b0,a0],[b1,a1],...]
  const rank = p.length / 2;
  const order = x.layout === 'nchw' ? [0, 3, 1, 2] : Array.from({ length: rank }, (_, i) => i);
  const pads = [...order.map((d) => p[2 * d]!), ...order.map((d) => p[2 * d + 1]!)];
  const padInputs = [x.name, cx.graph.constI64(`${n.name}/pads`, pads)];
  if (n.op === 'PadV2') padInputs.push(cx.get(inputs[2]!).name);
  if (n.op === 'MirrorPad' && attrString(n, 'mode').toLowerCase() === 'symmetric')
    throw new UnsupportedOpError(n.op, n.name, 'SYMMETRIC mirror padding');
  const mode = n.op === 'MirrorPad' ? 'reflect' : 'constant';
  cx.set(n, cx.graph.op('Pad', padInputs, { mode: attr.string(mode) }, n.name), x.layout);
};

/** Concatenates in NCHW when every part is NCHW, else in TF's layout. */
const concat: OpHandler = (cx, n, inputs) => {
  const parts = inputs.slice(0, -1).map((r) => cx.get(r));
  const axisVal = Number(cx.requireConst(inputs[inputs.length - 1]!, n).values[0]);
  const allNchw = parts.every((p) => p.layout === 'nchw');
  const names = allNchw ? parts.map((p) => p.name) : parts.map((p) => cx.toTfLayout(p));
  const axis = allNchw ? cx.axis(parts[0]!, axisVal, 4) : axisVal;
  cx.set(n, cx.graph.op('Concat', names, { axis: attr.int(axis) }, n.name), allNchw ? 'nchw' : 'plain');
};

const expandDims: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  const ax = Number(cx.requireConst(inputs[1]!, n).values[0]);
  cx.set(n, cx.graph.op('Unsqueeze', [cx.toTfLayout(x), cx.graph.constI64('axes', [ax])], {}, n.name), 'plain');
};

/** StridedSlice with begin/end/shrink masks (no ellipsis or new-axis masks) as ONNX Slice + Squeeze. */
const stridedSlice: OpHandler = (cx, n, inputs) => {
  const g = cx.graph;
  const x = cx.get(inputs[0]!);
  const begin = Array.from(cx.requireConst(inputs[1]!, n).values);
  const end = Array.from(cx.requireConst(inputs[2]!, n).values);
  const strides = Array.from(cx.requireConst(inputs[3]!, n).values);
  const beginMask = attrInt(n, 'begin_mask', 0);
  const endMask = attrInt(n, 'end_mask', 0);
  if (attrInt(n, 'ellipsis_mask', 0) || attrInt(n, 'new_axis_mask', 0))
    throw new UnsupportedOpError(n.op, n.name, 'ellipsis or new-axis mask');
  const shrink = attrInt(n, 'shrink_axis_mask', 0);
  const src = cx.toTfLayout(x);
  const big = 2 ** 31 - 1;
  const starts = begin.map((v, i) => (beginMask & (1 << i) ? (strides[i]! > 0 ? 0 : big) : v));
  const ends = end.map((v, i) => (endMask & (1 << i) ? (strides[i]! > 0 ? big : -big) : shrink & (1 << i) ? begin[i]! + 1 : v));
  const axes = begin.map((_, i) => i);
  const sliceInputs = [src, g.constI64('starts', starts), g.constI64('ends', ends), g.constI64('axes', axes), g.constI64('steps', strides)];
  let y = g.op('Slice', sliceInputs, {}, n.name);
  const shrunk = axes.filter((i) => shrink & (1 << i));
  if (shrunk.length) y = g.op('Squeeze', [y, g.constI64('axes', shrunk)]);
  cx.set(n, y, 'plain');
};

export const shapeOps: Record<string, OpHandler> = {
  Reshape: reshape,
  Pad: pad,
  PadV2: pad,
  MirrorPad: pad,
  ConcatV2: concat,
  ExpandDims: expandDims,
  StridedSlice: stridedSlice,
};
