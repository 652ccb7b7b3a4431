// The one file that touches the ONNX protobuf schema (onnx-proto: protobufjs code generated from the official onnx.proto).
import onnxProto from 'onnx-proto';
import { readFile } from 'node:fs/promises';
import { ModelFormatError, errorMessage } from '../core/errors.js';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.ModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;

/** ONNX TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type ElemType = 'float32' | 'int64' | 'int32' | 'bool' | 'uint8';
export const elemTypeCode: Record<ElemType, number> = { float32: 1, int64: 7, int32: 6, bool: 9, uint8: 2 };

/** Parses ONNX bytes; a corrupt or truncated file becomes a ModelFormatError naming the source. */
export function decodeModel(bytes: Uint8Array, source = 'model'): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new ModelFormatError(`${source}: not a valid ONNX model (${errorMessage(e)})`, { cause: e });
  }
  if (!model.graph || !model.graph.node || model.graph.node.length === 0) {
    throw new ModelFormatError(`${source}: ONNX model has no graph nodes (truncated or not an ONNX file)`);
  }
  if (!model.opsetImport || model.opsetImport.length === 0) {
    throw new ModelFormatError(`${source}: ONNX model declares no opset`);
  }
  return model;
}

export async function readModel(path: string): Promise<ModelProto> {
  return decodeModel(await readFile(path), path);
}

export function encodeModel(model: ModelProto | onnxProto.onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** Reads an initializer's values as float32, whatever way the producer stored them. */
export function tensorToFloat32(t: TensorProto): Float32Array {
  const n = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    const copy = new Uint8Array(raw.byteLength);
    copy.set(raw);
    if (t.dataType === DataType.FLOAT) return new Float32Array(copy.buffer);
    if (t.dataType === DataType.INT64) return Float32Array.from(new BigInt64Array(copy.buffer), Number);
    if (t.dataType === DataType.INT32) return Float32Array.from(new Int32Array(copy.buffer));
    throw new ModelFormatError(`tensor ${t.name}: unsupported raw data type ${t.dataType}`);
  }
  if (t.floatData && t.floatData.length) return Float32Array.from(t.floatData);
  if (t.int64Data && t.int64Data.length) return Float32Array.from(t.int64Data, (v) => Number(v));
  if (t.int32Data && t.int32Data.length) return Float32Array.from(t.int32Data);
  if (n === 0) return new Float32Array(0);
  throw new ModelFormatError(`tensor ${t.name}: no data`);
}

export function tensorDims(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => Number(d));
}
