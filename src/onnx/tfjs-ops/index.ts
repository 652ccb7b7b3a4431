// The table of TF op handlers used by the converter: TF op name -> handler. Add an op by adding a handler here.
import { convOps } from './conv.js';
import { elementwiseOps } from './elementwise.js';
import { matmulOps } from './matmul.js';
import { reduceOps } from './reduce.js';
import { shapeOps } from './shape.js';
import type { OpHandler } from './types.js';

export type { ConstValues, ConversionContext, Converted, OpHandler } from './types.js';
export { parseRef, shapeOf } from './attrs.js';

export const opHandlers: Readonly<Record<string, OpHandler>> = Object.freeze({
  ...elementwiseOps,
  ...convOps,
  ...reduceOps,
  ...shapeOps,
  ...matmulOps,
});
