// Public surface of the ONNX toolkit: read/write, build, convert from TF.js, cut and merge graphs, run.
export {
  decodeModel,
  encodeModel,
  readModel,
  tensorToFloat32,
  tensorDims,
  onnx,
  type ModelProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
} from './proto.js';
export {
  GraphBuilder,
  attr,
  makeModel,
  makeTensor,
  makeValueInfo,
  type AttrValue,
  type BuildOptions,
  type TensorData,
} from './graph-builder.js';
export { readTfjsGraphModel, decodeWeights, type TfjsGraphModel, type TfjsWeightSpec } from './tfjs-artifacts.js';
export { convertTfjsGraph, type ConvertOptions, type ConvertResult } from './tfjs-to-onnx.js';
export { extractSubgraph, addOutputs, listTensors, type ExtractOptions, type TensorListing } from './subgraph.js';
export { mergeModels, type MergeOptions } from './merge.js';
export { createSession, runFloat, type CreatedSession, type ExecutionProviderName, type SessionOptions } from './runtime.js';
