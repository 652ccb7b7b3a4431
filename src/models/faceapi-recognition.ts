// Builds face-api's FaceRecognitionNet (dlib's ResNet-34 face descriptor, 150 px input, 128-d) into ONNX from its weights.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelFormatError } from '../core/errors.js';
import { GraphBuilder, attr } from '../onnx/graph-builder.js';
import type { ModelProto } from '../onnx/proto.js';
import {
  FACEAPI_MEAN_RGB,
  FACEAPI_PIXEL_DIVISOR,
  FACEAPI_TENSORS,
  faceApiInput,
  faceApiModelDir,
  readFaceApiWeights,
} from './faceapi-nets.js';
import type { EncoderSpec, InputSpec, ModelSource, OutputSpec } from './manifest.js';

/** dlib's face chip size: face-api resizes every face to 150 x 150 before the net. */
export const FACEAPI_RECOGNITION_INPUT_SIZE = 150;
export const FACEAPI_RECOGNITION_DIMS = 128;
/** Name of the descriptor output (face-api `computeFaceDescriptor`: the raw 128 values, not normalised). */
export const FACEAPI_DESCRIPTOR = 'descriptor';

const MODEL_NAME = 'face_recognition_model';

type Weights = Awaited<ReturnType<typeof readFaceApiWeights>>;

export interface FaceApiRecognitionBuild {
  name: string;
  model: ModelProto;
  /** Raw RGB 0..255 NHWC 150 x 150; the graph subtracts face-api's mean and divides by 255 itself. */
  input: InputSpec;
  outputs: OutputSpec[];
  encoder: EncoderSpec;
  /** The fc matrix after GAP, row-major [256, 128] (no bias): `descriptor = GAP(encoder) @ fc`. */
  fc: Float32Array;
  source: ModelSource;
}

interface Tensor {
  out: string;
  size: number;
  channels: number;
}

/** Emits face-api's ResNet-34 layers (faceRecognitionNet/*.ts) as NCHW ONNX nodes with static spatial sizes. */
class RecognitionGraph {
  readonly g = new GraphBuilder('faceapi_recognition');
  constructor(private readonly weights: Weights) {}

  private take(name: string, shape: readonly number[]): Float32Array {
    const w = this.weights.get(name);
    if (!w) throw new ModelFormatError(`${MODEL_NAME}: weight ${name} missing from the face-api manifest`);
    if (w.shape.length !== shape.length || w.shape.some((d, i) => shape[i] !== -1 && d !== shape[i]))
      throw new ModelFormatError(`${MODEL_NAME}: weight ${name} has shape [${w.shape.join(',')}], expected [${shape.join(',')}]`);
    return w.values instanceof Float32Array ? w.values : Float32Array.from(w.values);
  }

  private shapeOf(name: string): number[] {
    const w = this.weights.get(name);
    if (!w) throw new ModelFormatError(`${MODEL_NAME}: weight ${name} missing from the face-api manifest`);
    return w.shape;
  }

  /** Raw RGB NHWC -> (x - mean) / 255 -> NCHW, as FaceRecognitionNet.forwardInput does. */
  normalizedInput(): Tensor {
    const { g } = this;
    const size = FACEAPI_RECOGNITION_INPUT_SIZE;
    const x = g.input(FACEAPI_TENSORS.input, ['N', size, size, 3]);
    const centred = g.op('Sub', [x, g.constF('preprocess/mean_rgb', [...FACEAPI_MEAN_RGB])], {}, 'preprocess/sub_mean');
    const scaled = g.op('Div', [centred, g.constF('preprocess/divisor', [FACEAPI_PIXEL_DIVISOR])], {}, 'preprocess/div');
    return { out: g.op('Transpose', [scaled], { perm: attr.ints([0, 3, 1, 2]) }, 'preprocess/to_nchw'), size, channels: 3 };
  }

  /**
   * face-api `convLayer`: conv2d(filters, stride, padding) + bias, then the scale layer `x * weights + biases`, then
   * ReLU when asked. The scale layer is folded into the convolution (W' = W * s, b' = b * s + beta): the same function.
   */
  convLayer(x: Tensor, prefix: string, stride: number, relu: boolean, padding: 'same' | 'valid'): Tensor {
    const [kh, kw, cin, cout] = this.shapeOf(`${prefix}/conv/filters`) as [number, number, number, number];
    if (cin !== x.channels) throw new ModelFormatError(`${MODEL_NAME}: ${prefix} expects ${cin} channels, got ${x.channels}`);
    const f = this.take(`${prefix}/conv/filters`, [kh, kw, cin, cout]);
    const bias = this.take(`${prefix}/conv/bias`, [cout]);
    const s = this.take(`${prefix}/scale/weights`, [cout]);
    const beta = this.take(`${prefix}/scale/biases`, [cout]);
    const w = new Float32Array(f.length);
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++)
        for (let c = 0; c < cin; c++)
          for (let o = 0; o < cout; o++) w[((o * cin + c) * kh + i) * kw + j] = f[((i * kw + j) * cin + c) * cout + o]! * s[o]!;
    const b = Float32Array.from(bias, (v, o) => v * s[o]! + beta[o]!);
    let pads = [0, 0, 0, 0];
    let size = Math.floor((x.size - kh) / stride) + 1;
    if (padding === 'same') {
      size = Math.ceil(x.size / stride);
      const total = Math.max((size - 1) * stride + kh - x.size, 0);
      const before = Math.floor(total / 2);
      pads = [before, before, total - before, total - before];
    }
    const { g } = this;
    const conv = g.op(
      'Conv',
      [x.out, g.initializer(`${prefix}/W`, w, [cout, cin, kh, kw]), g.initializer(`${prefix}/B`, b, [cout])],
      { kernel_shape: attr.ints([kh, kw]), strides: attr.ints([stride, stride]), pads: attr.ints(pads) },
      prefix,
    );
    return { out: relu ? g.op('Relu', [conv], {}, `${prefix}/relu`) : conv, size, channels: cout };
  }

  /** face-api `residual`: conv -> conv (no ReLU) -> + x -> ReLU. */
  residual(x: Tensor, prefix: string): Tensor {
    const a = this.convLayer(x, `${prefix}/conv1`, 1, true, 'same');
    const b = this.convLayer(a, `${prefix}/conv2`, 1, false, 'same');
    return { ...b, out: this.g.op('Relu', [this.g.op('Add', [b.out, x.out], {}, `${prefix}/add`)], {}, `${prefix}/relu`) };
  }

  /**
   * face-api `residualDown`: convDown (3x3, stride 2, valid) -> conv; the shortcut is avgPool(2, 2, valid) of x with
   * zero channels appended when the width doubles; when the two differ in size the conv branch gets one zero row and
   * column at the end (bottom, right), exactly as face-api's tf.concat of zeros.
   */
  residualDown(x: Tensor, prefix: string): Tensor {
    const { g } = this;
    const a = this.convLayer(x, `${prefix}/conv1`, 2, true, 'valid');
    let b = this.convLayer(a, `${prefix}/conv2`, 1, false, 'same');
    let pooled = g.op('AveragePool', [x.out], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }, `${prefix}/avgpool`);
    const pooledSize = Math.floor(x.size / 2);
    if (pooledSize !== b.size) {
      if (pooledSize !== b.size + 1) throw new ModelFormatError(`${MODEL_NAME}: ${prefix} cannot match ${b.size} to ${pooledSize}`);
      const out = g.op('Pad', [b.out, g.constI64(`${prefix}/pad_hw`, [0, 0, 0, 0, 0, 0, 1, 1])], {}, `${prefix}/pad_hw`);
      b = { ...b, out, size: pooledSize };
    }
    if (x.channels !== b.channels) {
      const extra = b.channels - x.channels;
      pooled = g.op('Pad', [pooled, g.constI64(`${prefix}/pad_c`, [0, 0, 0, 0, 0, extra, 0, 0])], {}, `${prefix}/pad_c`);
    }
    return { ...b, out: g.op('Relu', [g.op('Add', [pooled, b.out], {}, `${prefix}/add`)], {}, `${prefix}/relu`) };
  }

  maxPoolValid(x: Tensor): Tensor {
    const out = this.g.op('MaxPool', [x.out], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]) }, 'maxpool');
    return { ...x, out, size: Math.floor((x.size - 3) / 2) + 1 };
  }

  /** Names the last map (the encoder cut), GAP -> flatten -> @ fc (no bias), as `out.mean([1, 2])` then matMul. */
  head(x: Tensor): Float32Array {
    const { g } = this;
    g.node('Identity', [x.out], [FACEAPI_TENSORS.features], {}, 'encoder/features');
    const gap = g.op('GlobalAveragePool', [FACEAPI_TENSORS.features], {}, 'encoder/gap');
    g.node('Flatten', [gap], [FACEAPI_TENSORS.pooled], { axis: attr.int(1) }, 'encoder/flatten');
    const fc = this.take('fc', [x.channels, FACEAPI_RECOGNITION_DIMS]);
    g.node(
      'MatMul',
      [FACEAPI_TENSORS.pooled, g.initializer('head/fc', fc, [x.channels, FACEAPI_RECOGNITION_DIMS])],
      [FACEAPI_DESCRIPTOR],
      {},
      'head/fc',
    );
    g.output(FACEAPI_TENSORS.features, ['N', x.channels, x.size, x.size]);
    g.output(FACEAPI_TENSORS.pooled, ['N', x.channels]);
    g.output(FACEAPI_DESCRIPTOR, ['N', FACEAPI_RECOGNITION_DIMS]);
    return fc;
  }
}

async function faceApiVersion(modelDir: string): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(join(modelDir, '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * FaceRecognitionNet as ONNX: input `input` [N,150,150,3] raw RGB 0..255, output `descriptor` [N,128] (face-api's
 * descriptor; face-api compares them by Euclidean distance 0.6, the server by cosine of the L2-normalised vectors),
 * plus the encoder map `encoder/features` [N,256,2,2] and its GAP `encoder/pooled`.
 *
 * Input crop: dlib trained the net on 150 px chips aligned by 5 landmarks with padding 0.25
 * (`get_face_chip_details(shape, 150, 0.25)`), so the manifest asks for 5-point alignment (`align: '5point'`).
 */
export async function buildFaceApiRecognition(modelDir = faceApiModelDir()): Promise<FaceApiRecognitionBuild> {
  const net = new RecognitionGraph(await readFaceApiWeights(MODEL_NAME, modelDir));
  let x = net.convLayer(net.normalizedInput(), 'conv32_down', 2, true, 'valid');
  x = net.maxPoolValid(x);
  for (const block of ['conv32_1', 'conv32_2', 'conv32_3']) x = net.residual(x, block);
  x = net.residualDown(x, 'conv64_down');
  for (const block of ['conv64_1', 'conv64_2', 'conv64_3']) x = net.residual(x, block);
  x = net.residualDown(x, 'conv128_down');
  for (const block of ['conv128_1', 'conv128_2']) x = net.residual(x, block);
  x = net.residualDown(x, 'conv256_down');
  for (const block of ['conv256_1', 'conv256_2']) x = net.residual(x, block);
  x = net.residualDown(x, 'conv256_down_out');
  const fc = net.head(x);
  return {
    name: 'facerec',
    model: net.g.build({
      docString: "face-api FaceRecognitionNet (dlib ResNet-34 face descriptor, 128-d), built from face-api's weights",
      metadata: { source: '@vladmandic/face-api', net: 'FaceRecognitionNet' },
    }),
    input: {
      ...faceApiInput(),
      size: FACEAPI_RECOGNITION_INPUT_SIZE,
      // Only for faces without keypoints (the box crop): on ORL unaligned, margin 0.1 gave TAR@FAR 0.1 % 95.7 %
      // against 84.7 % (0), 93.3 % (0.2) and 74.0 % (0.3).
      cropMargin: 0.1,
      align: '5point',
    },
    outputs: [
      { name: FACEAPI_DESCRIPTOR, task: 'embedding', decoding: { type: 'embedding', size: FACEAPI_RECOGNITION_DIMS, normalize: 'l2' } },
    ],
    encoder: { tensor: FACEAPI_TENSORS.features, width: x.channels, spatial: [x.size, x.size], layout: 'NCHW', head: 'gap-dense' },
    fc,
    source: {
      package: '@vladmandic/face-api',
      version: await faceApiVersion(modelDir),
      file: `model/${MODEL_NAME}-weights_manifest.json`,
      license: 'MIT (face-api); dlib model: Boost Software License / CC0 (dlib)',
    },
  };
}
