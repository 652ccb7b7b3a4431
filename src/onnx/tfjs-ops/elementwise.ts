// Op handlers for graph plumbing (Const, Identity) and element-wise ops: binary arithmetic, activations, Softmax.
import { ModelFormatError, UnsupportedOpError } from '../../core/errors.js';
import { attr } from '../graph-builder.js';
import type { OpHandler } from './types.js';

/** Constants are materialised lazily by the first user; NoOp has no data output. */
const nothing: OpHandler = () => {};

const identity: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  cx.set(n, x.name, x.layout);
};

/** A binary op whose operands may be an NCHW activation, a plain tensor or a per-channel constant. */
function binary(onnxOp: string): OpHandler {
  return (cx, n, inputs) => {
    const [ra, rb] = inputs as [string, string];
    // Activations first: their layout decides how a constant operand must be shaped.
    let a = cx.isActivation(ra) ? cx.get(ra) : undefined;
    let b = cx.isActivation(rb) ? cx.get(rb) : undefined;
    const anyNchw = a?.layout === 'nchw' || b?.layout === 'nchw';
    a ??= cx.get(ra, anyNchw ? 'nchw-broadcast' : 'plain');
    b ??= cx.get(rb, anyNchw ? 'nchw-broadcast' : 'plain');
    if (a.layout !== b.layout && a.layout === 'nchw' && cx.isActivation(rb)) b = { name: cx.toNchw(b.name), layout: 'nchw' };
    if (a.layout !== b.layout && b.layout === 'nchw' && cx.isActivation(ra)) a = { name: cx.toNchw(a.name), layout: 'nchw' };
    cx.set(n, cx.graph.op(onnxOp, [a.name, b.name], {}, n.name), anyNchw ? 'nchw' : 'plain');
  };
}

/** A one-input op that keeps its operand's layout. */
function unary(onnxOp: string): OpHandler {
  return (cx, n, inputs) => {
    const x = cx.get(inputs[0]!);
    cx.set(n, cx.graph.op(onnxOp, [x.name], {}, n.name), x.layout);
  };
}

const relu6: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  cx.set(n, cx.graph.op('Clip', [x.name, cx.graph.constF('zero', [0], []), cx.graph.constF('six', [6], [])], {}, n.name), x.layout);
};

const square: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  cx.set(n, cx.graph.op('Mul', [x.name, x.name], {}, n.name), x.layout);
};

const rsqrt: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  const s = cx.graph.op('Sqrt', [x.name]);
  cx.set(n, cx.graph.op('Reciprocal', [s], {}, n.name), x.layout);
};

const prelu: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  const alpha = cx.get(inputs[1]!, x.layout === 'nchw' ? 'nchw-broadcast' : 'plain');
  cx.set(n, cx.graph.op('PRelu', [x.name, alpha.name], {}, n.name), x.layout);
};

const softmax: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  if (x.layout === 'nchw') throw new UnsupportedOpError(n.op, n.name, 'softmax over a rank-4 activation');
  cx.set(n, cx.graph.op('Softmax', [x.name], { axis: attr.int(-1) }, n.name), 'plain');
};

export const elementwiseOps: Record<string, OpHandler> = {
  Const: nothing,
  NoOp: nothing,
  Placeholder: (_cx, n) => {
    throw new ModelFormatError(`unexpected placeholder ${n.name}`);
  },
  Identity: identity,
  StopGradient: identity,
  Add: binary('Add'),
  AddV2: binary('Add'),
  BiasAdd: binary('Add'),
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  RealDiv: binary('Div'),
  Div: binary('Div'),
  Maximum: binary('Max'),
  Minimum: binary('Min'),
  Relu: unary('Relu'),
  Relu6: relu6,
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  Abs: unary('Abs'),
  Elu: unary('Elu'),
  Square: square,
  Rsqrt: rsqrt,
  Prelu: prelu,
  Softmax: softmax,
};
