// Op handlers for reductions (Mean, Sum, Max) with axes mapped into the converted layout.
import { UnsupportedOpError } from '../../core/errors.js';
import { attr } from '../graph-builder.js';
import { attrBool } from './attrs.js';
import type { OpHandler } from './types.js';

const onnxReduceOp: Record<string, string> = { Mean: 'ReduceMean', Sum: 'ReduceSum', Max: 'ReduceMax' };

const reduce: OpHandler = (cx, n, inputs) => {
  const x = cx.get(inputs[0]!);
  const axes = Array.from(cx.requireConst(inputs[1]!, n).values);
  const keep = attrBool(n, 'keep_dims');
  const rank = x.layout === 'nchw' ? 4 : -1;
  if (rank < 0 && axes.some((a) => a < 0)) throw new UnsupportedOpError(n.op, n.name, 'negative axes on a tensor of unknown rank');
  const mapped = axes.map((a) => cx.axis(x, a, 4));
  const op = onnxReduceOp[n.op]!;
  // opset 13+: ReduceSum takes axes as an input, ReduceMean/ReduceMax still as an attribute until opset 18.
  const y =
    op === 'ReduceSum'
      ? cx.graph.op(op, [x.name, cx.graph.constI64('axes', mapped)], { keepdims: attr.int(keep ? 1 : 0) }, n.name)
      : cx.graph.op(op, [x.name], { axes: attr.ints(mapped), keepdims: attr.int(keep ? 1 : 0) }, n.name);
  // Reducing H and W of NCHW without keepdims leaves [N, C]: the same as TF's result.
  const spatialOnly = x.layout === 'nchw' && !keep && axes.length === 2 && mapped.every((a) => a === 2 || a === 3);
  if (x.layout === 'nchw' && keep) cx.set(n, y, 'nchw');
  else if (x.layout !== 'nchw' || spatialOnly) cx.set(n, y, 'plain');
  else throw new UnsupportedOpError(n.op, n.name, `reduction over axes [${axes}] of an NCHW activation`);
};

export const reduceOps: Record<string, OpHandler> = { Mean: reduce, Sum: reduce, Max: reduce };
