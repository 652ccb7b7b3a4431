// Splits a task model at its encoder feature tensor: the encoder (image -> spatial map) and the head after it.
import { ModelFormatError } from '../core/errors.js';
import type { ModelProto, NodeProto } from '../onnx/proto.js';
import { extractSubgraph } from '../onnx/subgraph.js';
import type { ModelManifest } from './manifest.js';

export interface EncoderCut {
  /** Image -> the encoder feature map (NCHW). */
  encoder: ModelProto;
  /** The graph's own pooled tensor ([N, C]) after GAP of the feature map, when the head is GAP + dense. */
  pooledTensor?: string;
  /** Pooled [N, C] -> the model's outputs, when the head is GAP + dense: the decoder the KT-Adapter starts from. */
  gapHead?: ModelProto;
  /** Feature map -> the model's outputs (any head; spatial input). */
  spatialHead: ModelProto;
}

const isGap = (n: NodeProto): boolean => {
  if (n.opType === 'GlobalAveragePool') return true;
  if (n.opType !== 'ReduceMean') return false;
  const axes = n.attribute?.find((a) => a.name === 'axes')?.ints?.map(Number) ?? [];
  return axes.length === 2 && axes.includes(2) && axes.includes(3);
};

/** The tensor that carries the feature map inside the graph (looking through the Identity that names it). */
function featureSource(nodes: NodeProto[], tensor: string): string {
  const producer = nodes.find((n) => n.output?.includes(tensor));
  if (!producer) throw new ModelFormatError(`encoder tensor ${tensor} is not produced by any node`);
  return producer.opType === 'Identity' ? producer.input![0]! : tensor;
}

export function cutAtEncoder(model: ModelProto, manifest: ModelManifest): EncoderCut {
  const enc = manifest.encoder;
  if (!enc) throw new ModelFormatError(`model ${manifest.name} declares no encoder tensor`);
  const outputs = manifest.outputs.map((o) => o.name);
  const nodes = model.graph?.node ?? [];
  const source = featureSource(nodes, enc.tensor);
  const encoder = extractSubgraph(model, { outputs: [enc.tensor] });
  const spatialHead = extractSubgraph(model, { inputs: [source], outputs });
  // GAP + dense: the map is reduced over H and W (possibly then flattened) before any other use.
  const reads = (n: NodeProto): boolean => n.input?.includes(source) === true || n.input?.includes(enc.tensor) === true;
  const consumers = nodes.filter((n) => reads(n) && !(n.opType === 'Identity' && n.output?.includes(enc.tensor)));
  if (consumers.length !== 1 || !isGap(consumers[0]!)) return { encoder, spatialHead };
  let pooled = consumers[0]!.output![0]!;
  const flatten = nodes.find((n) => n.opType === 'Flatten' && n.input?.[0] === pooled);
  if (consumers[0]!.opType === 'GlobalAveragePool') {
    if (!flatten) return { encoder, spatialHead };
    pooled = flatten.output![0]!;
  }
  const gapHead = extractSubgraph(model, { inputs: [pooled], outputs });
  return { encoder, pooledTensor: pooled, gapHead, spatialHead };
}
