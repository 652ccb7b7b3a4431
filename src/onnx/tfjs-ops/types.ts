// The contract between the TF.js -> ONNX converter and its per-op handlers (one small function per TF op, registered by name).
import type { GraphBuilder } from '../graph-builder.js';
import type { TfjsNodeDef } from '../tfjs-artifacts.js';

/** Where a TF tensor lives in the ONNX graph: rank-4 activations are kept NCHW, everything else as TF has it. */
export interface Converted {
  name: string;
  layout: 'nchw' | 'plain';
}

/** A constant's values as stored in the weights manifest. */
export interface ConstValues {
  values: Float32Array | Int32Array;
  shape: number[];
}

/** What the converter offers an op handler: the graph under construction and the TF-tensor bookkeeping. */
export interface ConversionContext {
  readonly graph: GraphBuilder;
  /** The ONNX tensor for a TF reference; constants are materialised on first use in the layout the user needs. */
  get(ref: string, want?: 'nchw-broadcast' | 'plain'): Converted;
  /** Records the ONNX tensor that holds output `index` of a TF node. */
  set(node: TfjsNodeDef, name: string, layout: Converted['layout'], index?: number): void;
  /** The constant behind a reference, or undefined when the reference is computed. */
  constValues(ref: string): ConstValues | undefined;
  /** The constant behind a reference; throws UnsupportedOpError naming `user` when it is computed. */
  requireConst(ref: string, user: TfjsNodeDef): ConstValues;
  /** Whether a reference is computed (not a Const node). */
  isActivation(ref: string): boolean;
  /** Brings a converted tensor back to TF's own layout (NHWC for rank-4). */
  toTfLayout(t: Converted): string;
  /** Transposes an NHWC tensor to NCHW. */
  toNchw(name: string): string;
  /** Axis of a TF tensor mapped into the converted layout. */
  axis(t: Converted, tfAxis: number, rank: number): number;
}

/**
 * Converts one TF node: reads its operands through the context, adds ONNX nodes and records its output(s).
 * `inputs` are the node's data inputs (control inputs removed).
 */
export type OpHandler = (cx: ConversionContext, n: TfjsNodeDef, inputs: string[]) => void;
