// Reads a TF.js graph model (model.json + weight shards) from disk and decodes its weights, with no TF.js runtime.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ModelFormatError, NotFoundError, errorMessage } from '../core/errors.js';

export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | 'string' | 'complex64';
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number; original_dtype?: string };
}

export interface TfjsNodeDef {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfjsAttr>;
}

export interface TfjsAttr {
  i?: string | number;
  f?: number;
  b?: boolean;
  s?: string;
  type?: string;
  list?: { i?: (string | number)[]; f?: number[]; s?: string[]; type?: string[] };
  shape?: { dim?: { size: string | number }[]; unknownRank?: boolean };
  tensor?: { dtype: string; tensorShape?: { dim?: { size: string | number }[] } };
}

export interface TfjsGraphModel {
  path: string;
  nodes: TfjsNodeDef[];
  /** Decoded weights by name: float32 (dequantised) or int32 values. */
  weights: Map<string, { values: Float32Array | Int32Array; shape: number[]; dtype: 'float32' | 'int32' }>;
  signature?: { inputs?: Record<string, { name: string }>; outputs?: Record<string, { name: string }> };
  /** Raw artifacts for loading the same model into TF.js (parity tests). */
  json: Record<string, unknown>;
  weightData: ArrayBuffer;
  weightSpecs: TfjsWeightSpec[];
}

function float16ToFloat32(h: number): number {
  const s = (h & 0x8000) >> 15;
  const e = (h & 0x7c00) >> 10;
  const f = h & 0x03ff;
  if (e === 0) return (s ? -1 : 1) * 2 ** -14 * (f / 1024);
  if (e === 0x1f) return f ? NaN : (s ? -1 : 1) * Infinity;
  return (s ? -1 : 1) * 2 ** (e - 15) * (1 + f / 1024);
}

/** Decodes one weight group's bytes following tfjs-core's io.decodeWeights rules (quantised dtypes included). */
export function decodeWeights(buffer: ArrayBuffer, specs: readonly TfjsWeightSpec[]): TfjsGraphModel['weights'] {
  const out: TfjsGraphModel['weights'] = new Map();
  let offset = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, d) => a * d, 1);
    const q = spec.quantization;
    const bytesPer = q ? (q.dtype === 'float16' || q.dtype === 'uint16' ? 2 : 1) : 4;
    const byteLength = size * bytesPer;
    if (offset + byteLength > buffer.byteLength)
      throw new ModelFormatError(`weights truncated at ${spec.name}: need ${offset + byteLength} bytes, have ${buffer.byteLength}`);
    const slice = buffer.slice(offset, offset + byteLength);
    offset += byteLength;
    if (spec.dtype !== 'float32' && spec.dtype !== 'int32')
      throw new ModelFormatError(`weight ${spec.name}: unsupported dtype ${spec.dtype}`);
    let values: Float32Array | Int32Array;
    if (!q) {
      values = spec.dtype === 'int32' ? new Int32Array(slice) : new Float32Array(slice);
    } else if (q.dtype === 'float16') {
      const h = new Uint16Array(slice);
      values = Float32Array.from(h, float16ToFloat32);
    } else {
      const raw = q.dtype === 'uint8' ? new Uint8Array(slice) : new Uint16Array(slice);
      const scale = q.scale ?? 1;
      const min = q.min ?? 0;
      values = Float32Array.from(raw, (v) => v * scale + min);
      if (spec.dtype === 'int32') values = Int32Array.from(values, Math.round);
    }
    out.set(spec.name, { values, shape: spec.shape, dtype: spec.dtype });
  }
  return out;
}

/** Loads `model.json` and its shards; a missing or corrupt file is a clear error naming the path. */
export async function readTfjsGraphModel(jsonPath: string): Promise<TfjsGraphModel> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') throw new NotFoundError(`TF.js model not found: ${jsonPath}`);
    throw new ModelFormatError(`cannot read TF.js model ${jsonPath}: ${errorMessage(e)}`, { cause: e });
  }
  const topology = json['modelTopology'] as { node?: TfjsNodeDef[] } | undefined;
  const manifest = json['weightsManifest'] as { paths: string[]; weights: TfjsWeightSpec[] }[] | undefined;
  if (!topology?.node || !manifest)
    throw new ModelFormatError(`${jsonPath}: not a TF.js graph model (no modelTopology.node or weightsManifest)`);
  const shards: Buffer[] = [];
  for (const group of manifest)
    for (const p of group.paths) {
      try {
        shards.push(await readFile(join(dirname(jsonPath), p)));
      } catch (e) {
        throw new ModelFormatError(`${jsonPath}: cannot read weight shard ${p}: ${errorMessage(e)}`, { cause: e });
      }
    }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  const weightSpecs = manifest.flatMap((g) => g.weights);
  const weights = decodeWeights(weightData, weightSpecs);
  return {
    path: jsonPath,
    nodes: topology.node,
    weights,
    ...(json['signature'] ? { signature: json['signature'] as NonNullable<TfjsGraphModel['signature']> } : {}),
    json,
    weightData,
    weightSpecs,
  };
}
