// Op handlers for MatMul and _FusedMatMul (bias and activation) on plain (rank-2) tensors.
import { UnsupportedOpError } from '../../core/errors.js';
import { attr } from '../graph-builder.js';
import type { TfjsNodeDef } from '../tfjs-artifacts.js';
import { attrBool, attrStrings } from './attrs.js';
import { fusedActivation } from './conv.js';
import type { ConversionContext, OpHandler } from './types.js';

/** The right operand: a constant becomes an initializer (transposed at conversion time), a computed one a Transpose node. */
function rightOperand(cx: ConversionContext, n: TfjsNodeDef, ref: string, transpose: boolean): string {
  const bConst = cx.constValues(ref);
  if (!bConst) {
    const bt = cx.get(ref).name;
    return transpose ? cx.graph.op('Transpose', [bt], { perm: attr.ints([1, 0]) }) : bt;
  }
  const [r, c] = bConst.shape as [number, number];
  const v = Float32Array.from(bConst.values);
  if (!transpose) return cx.graph.initializer(`${n.name}/weight`, v, [r, c]);
  const t = new Float32Array(v.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = v[i * c + j]!;
  return cx.graph.initializer(`${n.name}/weight`, t, [c, r]);
}

const matmul: OpHandler = (cx, n, inputs) => {
  const a = cx.get(inputs[0]!);
  if (a.layout === 'nchw') throw new UnsupportedOpError(n.op, n.name, 'matmul on a rank-4 activation');
  const left = attrBool(n, 'transpose_a') ? cx.graph.op('Transpose', [a.name], { perm: attr.ints([1, 0]) }) : a.name;
  const right = rightOperand(cx, n, inputs[1]!, attrBool(n, 'transpose_b'));
  let y = cx.graph.op('MatMul', [left, right], {}, n.name);
  const fused = n.op === '_FusedMatMul' ? attrStrings(n, 'fused_ops') : [];
  if (fused.length > 0) {
    if (fused[0] !== 'BiasAdd') throw new UnsupportedOpError(n.op, n.name, `fused ops ${fused.join(',')}`);
    const bias = cx.requireConst(inputs[2]!, n);
    y = cx.graph.op('Add', [y, cx.graph.initializer(`${n.name}/bias`, Float32Array.from(bias.values), [bias.values.length])]);
    y = fusedActivation(cx, n, y, fused, inputs.slice(2));
  }
  cx.set(n, y, 'plain');
};

export const matmulOps: Record<string, OpHandler> = { MatMul: matmul, _FusedMatMul: matmul };
