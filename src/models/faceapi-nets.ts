// Builds ONNX models from @vladmandic/face-api's weights-only nets (68-point landmarks, expression, age/gender).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ModelFormatError, NotFoundError, errorMessage } from '../core/errors.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import type { ModelProto } from '../onnx/proto.js';
import { decodeWeights, type TfjsWeightSpec } from '../onnx/tfjs-artifacts.js';
import type { EncoderSpec, InputSpec, ModelSource, OutputSpec } from './manifest.js';

/**
 * face-api's own input normalisation (FaceFeatureExtractor / TinyXception `forwardInput`):
 * `value = (pixel - FACEAPI_MEAN_RGB[c]) / FACEAPI_PIXEL_DIVISOR`, pixel an RGB value in 0..255.
 * The built graphs apply it themselves, so their input is raw RGB 0..255.
 */
export const FACEAPI_MEAN_RGB = [122.782, 117.001, 104.298] as const;
export const FACEAPI_PIXEL_DIVISOR = 255;
export const FACEAPI_INPUT_SIZE = 112;
/** Order of FaceExpressionNet's 7 outputs (face-api `FACE_EXPRESSION_LABELS`). */
export const FACEAPI_EXPRESSION_LABELS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'] as const;
/** Order of AgeGenderNet's gender softmax: index 0 is the probability of male. */
export const FACEAPI_GENDER_LABELS = ['male', 'female'] as const;

/** Names of the tensors every built model exposes. */
export const FACEAPI_TENSORS = {
  input: 'input',
  /** Last spatial feature map (NCHW), the one face-api avg-pools before its fc layer(s). */
  features: 'encoder/features',
  /** GAP of `features`, [N, C]: the prior token. */
  pooled: 'encoder/pooled',
} as const;

/** One fully-connected layer after GAP: `y = pooled @ weights + bias`, then `activation`. */
export interface FaceApiHead {
  /** ONNX output name this head produces. */
  output: string;
  /** Row-major [inFeatures, outFeatures], as face-api stores it (`fc/.../weights`). */
  weights: Float32Array;
  bias: Float32Array;
  inFeatures: number;
  outFeatures: number;
  activation: 'none' | 'softmax';
}

export interface FaceApiNetBuild {
  /** Suggested model-repository name. */
  name: string;
  model: ModelProto;
  /** Raw RGB 0..255 NHWC; normalisation is inside the graph (so scale 1, mean 0, std 1). */
  input: InputSpec;
  /** Exactly what face-api does inside the net, applied by the graph after `input`. */
  inGraphNormalization: { mean: readonly number[]; divisor: number };
  outputs: OutputSpec[];
  encoder: EncoderSpec;
  encoderTensor: string;
  encoderWidth: number;
  encoderSpatial: [number, number];
  /** The dense layer(s) after GAP; `GAP(encoder) -> heads` reproduces the outputs. */
  heads: FaceApiHead[];
  source: ModelSource;
}

type Weights = Map<string, { values: Float32Array | Int32Array; shape: number[] }>;

const require = createRequire(import.meta.url);

function faceApiPackageDir(): string {
  try {
    return dirname(require.resolve('@vladmandic/face-api/package.json'));
  } catch (e) {
    throw new NotFoundError(`npm package @vladmandic/face-api is not installed: ${errorMessage(e)}`, { cause: e });
  }
}

/** The folder that holds face-api's `*-weights_manifest.json` and `*.bin` files. */
export function faceApiModelDir(): string {
  return join(faceApiPackageDir(), 'model');
}

async function faceApiVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(faceApiPackageDir(), 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/** Reads and dequantises `<modelName>-weights_manifest.json` and its shards (uint8 / float16 quantisation). */
export async function readFaceApiWeights(modelName: string, modelDir = faceApiModelDir()): Promise<Weights> {
  const manifestPath = join(modelDir, `${modelName}-weights_manifest.json`);
  let groups: { paths: string[]; weights: TfjsWeightSpec[] }[];
  try {
    groups = JSON.parse(await readFile(manifestPath, 'utf8')) as typeof groups;
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') throw new NotFoundError(`face-api weights manifest not found: ${manifestPath}`);
    throw new ModelFormatError(`cannot read face-api weights manifest ${manifestPath}: ${errorMessage(e)}`, { cause: e });
  }
  const weights: Weights = new Map();
  for (const group of groups) {
    const shards: Buffer[] = [];
    for (const p of group.paths) {
      try {
        shards.push(await readFile(join(modelDir, p)));
      } catch (e) {
        throw new ModelFormatError(`${manifestPath}: cannot read weight shard ${p}: ${errorMessage(e)}`, { cause: e });
      }
    }
    const all = Buffer.concat(shards);
    const buffer = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
    for (const [name, w] of decodeWeights(buffer, group.weights)) weights.set(name, w);
  }
  return weights;
}

/** TF 'same' padding for one axis: [before, after] (the odd pixel goes after, as in TensorFlow). */
function samePads(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** Emits face-api's layers as NCHW ONNX nodes, tracking channels and the (square) spatial size. */
class FaceApiGraph {
  readonly g: GraphBuilder;
  constructor(
    name: string,
    private readonly weights: Weights,
    private readonly modelName: string,
  ) {
    this.g = new GraphBuilder(name);
  }

  private take(name: string, shape: readonly number[]): Float32Array {
    const w = this.weights.get(name);
    if (!w) throw new ModelFormatError(`${this.modelName}: weight ${name} missing from the face-api manifest`);
    if (w.shape.length !== shape.length || w.shape.some((d, i) => shape[i] !== -1 && d !== shape[i])) {
      throw new ModelFormatError(`${this.modelName}: weight ${name} has shape [${w.shape.join(',')}], expected [${shape.join(',')}]`);
    }
    return w.values instanceof Float32Array ? w.values : Float32Array.from(w.values);
  }

  private shapeOf(name: string): number[] {
    const w = this.weights.get(name);
    if (!w) throw new ModelFormatError(`${this.modelName}: weight ${name} missing from the face-api manifest`);
    return w.shape;
  }

  /** Raw RGB NHWC input -> (x - mean) / 255 -> NCHW, as face-api's forwardInput does. */
  normalizedInput(): string {
    const { g } = this;
    const x = g.input(FACEAPI_TENSORS.input, ['N', FACEAPI_INPUT_SIZE, FACEAPI_INPUT_SIZE, 3]);
    const centred = g.op('Sub', [x, g.constF('preprocess/mean_rgb', [...FACEAPI_MEAN_RGB])], {}, 'preprocess/sub_mean');
    const scaled = g.op('Div', [centred, g.constF('preprocess/divisor', [FACEAPI_PIXEL_DIVISOR])], {}, 'preprocess/div');
    return g.op('Transpose', [scaled], { perm: { kind: 'ints', value: [0, 3, 1, 2] } }, 'preprocess/to_nchw');
  }

  /** tf.conv2d(x, filters [kh,kw,cin,cout], stride, 'same') + bias. */
  conv(x: string, size: number, prefix: string, stride: number): { out: string; size: number; channels: number } {
    const [kh, kw, cin, cout] = this.shapeOf(`${prefix}/filters`) as [number, number, number, number];
    const f = this.take(`${prefix}/filters`, [kh, kw, cin, cout]);
    const w = new Float32Array(f.length);
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++)
        for (let c = 0; c < cin; c++)
          for (let o = 0; o < cout; o++) {
            w[((o * cin + c) * kh + i) * kw + j] = f[((i * kw + j) * cin + c) * cout + o]!;
          }
    const [pb, pa] = samePads(size, kh, stride);
    const { g } = this;
    const out = g.op(
      'Conv',
      [x, g.initializer(`${prefix}/W`, w, [cout, cin, kh, kw]), g.initializer(`${prefix}/B`, this.take(`${prefix}/bias`, [cout]), [cout])],
      {
        kernel_shape: { kind: 'ints', value: [kh, kw] },
        strides: { kind: 'ints', value: [stride, stride] },
        pads: { kind: 'ints', value: [pb, pb, pa, pa] },
      },
      prefix,
    );
    return { out, size: Math.ceil(size / stride), channels: cout };
  }

  /** tf.separableConv2d(x, depthwise [3,3,c,1], pointwise [1,1,c,cout], stride, 'same') + bias. */
  separableConv(x: string, size: number, prefix: string, stride: number): { out: string; size: number; channels: number } {
    const [kh, kw, c] = this.shapeOf(`${prefix}/depthwise_filter`) as [number, number, number, number];
    const cout = this.shapeOf(`${prefix}/pointwise_filter`)[3]!;
    const dwSrc = this.take(`${prefix}/depthwise_filter`, [kh, kw, c, 1]);
    const dw = new Float32Array(dwSrc.length);
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++) for (let ch = 0; ch < c; ch++) dw[(ch * kh + i) * kw + j] = dwSrc[(i * kw + j) * c + ch]!;
    const pwSrc = this.take(`${prefix}/pointwise_filter`, [1, 1, c, cout]);
    const pw = new Float32Array(pwSrc.length);
    for (let ch = 0; ch < c; ch++) for (let o = 0; o < cout; o++) pw[o * c + ch] = pwSrc[ch * cout + o]!;
    const [pb, pa] = samePads(size, kh, stride);
    const { g } = this;
    const depthwise = g.op(
      'Conv',
      [x, g.initializer(`${prefix}/depthwise_W`, dw, [c, 1, kh, kw])],
      {
        group: { kind: 'int', value: c },
        kernel_shape: { kind: 'ints', value: [kh, kw] },
        strides: { kind: 'ints', value: [stride, stride] },
        pads: { kind: 'ints', value: [pb, pb, pa, pa] },
      },
      `${prefix}/depthwise`,
    );
    const out = g.op(
      'Conv',
      [
        depthwise,
        g.initializer(`${prefix}/pointwise_W`, pw, [cout, c, 1, 1]),
        g.initializer(`${prefix}/B`, this.take(`${prefix}/bias`, [cout]), [cout]),
      ],
      {
        kernel_shape: { kind: 'ints', value: [1, 1] },
      },
      `${prefix}/pointwise`,
    );
    return { out, size: Math.ceil(size / stride), channels: cout };
  }

  relu(x: string, hint: string): string {
    return this.g.op('Relu', [x], {}, hint);
  }

  add(a: string, b: string, hint: string): string {
    return this.g.op('Add', [a, b], {}, hint);
  }

  maxPoolSame(x: string, size: number, hint: string): { out: string; size: number } {
    const [pb, pa] = samePads(size, 3, 2);
    const out = this.g.op(
      'MaxPool',
      [x],
      {
        kernel_shape: { kind: 'ints', value: [3, 3] },
        strides: { kind: 'ints', value: [2, 2] },
        pads: { kind: 'ints', value: [pb, pb, pa, pa] },
      },
      hint,
    );
    return { out, size: Math.ceil(size / 2) };
  }

  /** face-api `denseBlock4(x, params, isFirstLayer, isScaleDown = true)`. */
  denseBlock4(x: string, size: number, prefix: string, isFirstLayer: boolean): { out: string; size: number; channels: number } {
    const c0 = isFirstLayer ? this.conv(x, size, `${prefix}/conv0`, 2) : this.separableConv(x, size, `${prefix}/conv0`, 2);
    const out1 = this.relu(c0.out, `${prefix}/relu0`);
    const out2 = this.separableConv(out1, c0.size, `${prefix}/conv1`, 1).out;
    const in3 = this.relu(this.add(out1, out2, `${prefix}/add1`), `${prefix}/relu1`);
    const out3 = this.separableConv(in3, c0.size, `${prefix}/conv2`, 1).out;
    const in4 = this.relu(this.add(out1, this.add(out2, out3, `${prefix}/add2a`), `${prefix}/add2`), `${prefix}/relu2`);
    const out4 = this.separableConv(in4, c0.size, `${prefix}/conv3`, 1).out;
    const sum = this.add(out1, this.add(out2, this.add(out3, out4, `${prefix}/add3b`), `${prefix}/add3a`), `${prefix}/add3`);
    return { out: this.relu(sum, `${prefix}/relu3`), size: c0.size, channels: c0.channels };
  }

  /** TinyXception `reductionBlock`. */
  reductionBlock(x: string, size: number, prefix: string, isActivateInput: boolean): { out: string; size: number; channels: number } {
    const input = isActivateInput ? this.relu(x, `${prefix}/relu_in`) : x;
    const s0 = this.separableConv(input, size, `${prefix}/separable_conv0`, 1);
    const s1 = this.separableConv(this.relu(s0.out, `${prefix}/relu0`), size, `${prefix}/separable_conv1`, 1);
    const pooled = this.maxPoolSame(s1.out, size, `${prefix}/maxpool`);
    const expansion = this.conv(x, size, `${prefix}/expansion_conv`, 2);
    return { out: this.add(pooled.out, expansion.out, `${prefix}/add`), size: pooled.size, channels: s1.channels };
  }

  /** TinyXception `mainBlock`. */
  mainBlock(x: string, size: number, prefix: string): { out: string; size: number; channels: number } {
    let out = x;
    let channels = 0;
    for (let i = 0; i < 3; i++) {
      const s = this.separableConv(this.relu(out, `${prefix}/relu${i}`), size, `${prefix}/separable_conv${i}`, 1);
      out = s.out;
      channels = s.channels;
    }
    return { out: this.add(out, x, `${prefix}/add`), size, channels };
  }

  /** Names the encoder map, then GAP -> flatten: face-api's avgPool([7,7],[2,2],'valid') on a 7x7 map is exactly GAP. */
  encoderAndPool(features: string): string {
    const { g } = this;
    g.node('Identity', [features], [FACEAPI_TENSORS.features], {}, 'encoder/features');
    const gap = g.op('GlobalAveragePool', [FACEAPI_TENSORS.features], {}, 'encoder/gap');
    g.node('Flatten', [gap], [FACEAPI_TENSORS.pooled], { axis: { kind: 'int', value: 1 } }, 'encoder/flatten');
    return FACEAPI_TENSORS.pooled;
  }

  /** face-api `fullyConnectedLayer`: pooled @ weights + bias, optionally softmax. */
  head(pooled: string, prefix: string, output: string, activation: 'none' | 'softmax', logitsName?: string): FaceApiHead {
    const [inFeatures, outFeatures] = this.shapeOf(`${prefix}/weights`) as [number, number];
    const weights = this.take(`${prefix}/weights`, [inFeatures, outFeatures]);
    const bias = this.take(`${prefix}/bias`, [outFeatures]);
    const { g } = this;
    const gemmInputs = [
      pooled,
      g.initializer(`head/${prefix}/weights`, weights, [inFeatures, outFeatures]),
      g.initializer(`head/${prefix}/bias`, bias, [outFeatures]),
    ];
    if (activation === 'none') {
      g.node('Gemm', gemmInputs, [output], {}, `head/${prefix}`);
    } else {
      const logits = g.node('Gemm', gemmInputs, [logitsName ?? `head/${prefix}/logits`], {}, `head/${prefix}`)[0]!;
      g.node('Softmax', [logits], [output], { axis: { kind: 'int', value: -1 } }, `head/${prefix}/softmax`);
    }
    return { output, weights, bias, inFeatures, outFeatures, activation };
  }
}

async function source(modelName: string): Promise<ModelSource> {
  return {
    package: '@vladmandic/face-api',
    version: await faceApiVersion(),
    file: `model/${modelName}-weights_manifest.json`,
    license: 'MIT',
  };
}

/** Tight crop on face-api's detection box, squared; face-api itself zero-pads a non-square box to a square, centred. */
export function faceApiInput(): InputSpec {
  return {
    name: FACEAPI_TENSORS.input,
    layout: 'NHWC',
    size: FACEAPI_INPUT_SIZE,
    colorOrder: 'RGB',
    scale: 1,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    cropMargin: 0,
    cropSquare: true,
  };
}

function encoderSpec(width: number, size: number): Pick<FaceApiNetBuild, 'encoder' | 'encoderTensor' | 'encoderWidth' | 'encoderSpatial'> {
  return {
    encoder: { tensor: FACEAPI_TENSORS.features, width, spatial: [size, size], layout: 'NCHW', head: 'gap-dense' },
    encoderTensor: FACEAPI_TENSORS.features,
    encoderWidth: width,
    encoderSpatial: [size, size],
  };
}

/** FaceFeatureExtractor: four dense blocks, 112 -> 7x7x256. */
function denseFeatureExtractor(net: FaceApiGraph): { out: string; size: number; channels: number } {
  let x = { out: net.normalizedInput(), size: FACEAPI_INPUT_SIZE, channels: 3 };
  for (let i = 0; i < 4; i++) x = net.denseBlock4(x.out, x.size, `dense${i}`, i === 0);
  return x;
}

const normalization = { mean: [...FACEAPI_MEAN_RGB], divisor: FACEAPI_PIXEL_DIVISOR };

/**
 * FaceLandmark68Net. Output `landmarks` [N,136]: face-api's raw `runNet` values, interleaved x0,y0,x1,y1,...
 * in 0..1 of the 112x112 input square. For a square crop of side S at (x0,y0): px = x0 + x*S, py = y0 + y*S.
 * For a w x h box (face-api zero-pads it to a centred square of side M = max(w,h)): px = x0 + x*M - (M-w)/2,
 * py = y0 + y*M - (M-h)/2 (see `decodeFaceApiLandmarks`).
 */
export async function buildFaceApiLandmark68(modelDir?: string): Promise<FaceApiNetBuild> {
  const modelName = 'face_landmark_68_model';
  const net = new FaceApiGraph('faceapi_landmark68', await readFaceApiWeights(modelName, modelDir), modelName);
  const features = denseFeatureExtractor(net);
  const head = net.head(net.encoderAndPool(features.out), 'fc', 'landmarks', 'none');
  net.g.output(FACEAPI_TENSORS.features, ['N', features.channels, features.size, features.size]);
  net.g.output(FACEAPI_TENSORS.pooled, ['N', features.channels]);
  net.g.output('landmarks', ['N', 136]);
  return {
    name: 'faceapi-landmark68',
    model: net.g.build({
      docString: 'face-api FaceLandmark68Net (68-point iBUG landmarks), built from its weights',
      metadata: { source: '@vladmandic/face-api', net: 'FaceLandmark68Net' },
    }),
    input: faceApiInput(),
    inGraphNormalization: normalization,
    outputs: [
      {
        name: 'landmarks',
        task: 'landmarks',
        decoding: { type: 'landmarks', scheme: 'ibug68', count: 68, dims: 2, coordinateScale: 1, normalized: true },
      },
    ],
    ...encoderSpec(features.channels, features.size),
    heads: [head],
    source: await source(modelName),
  };
}

/** FaceExpressionNet. Outputs `expressions` [N,7] (softmax probabilities, FACEAPI_EXPRESSION_LABELS order) and `expression_logits`. */
export async function buildFaceApiExpression(modelDir?: string): Promise<FaceApiNetBuild> {
  const modelName = 'face_expression_model';
  const net = new FaceApiGraph('faceapi_expression', await readFaceApiWeights(modelName, modelDir), modelName);
  const features = denseFeatureExtractor(net);
  const head = net.head(net.encoderAndPool(features.out), 'fc', 'expressions', 'softmax', 'expression_logits');
  net.g.output(FACEAPI_TENSORS.features, ['N', features.channels, features.size, features.size]);
  net.g.output(FACEAPI_TENSORS.pooled, ['N', features.channels]);
  net.g.output('expressions', ['N', 7]);
  net.g.output('expression_logits', ['N', 7]);
  return {
    name: 'faceapi-expression',
    model: net.g.build({
      docString: 'face-api FaceExpressionNet (7 expressions), built from its weights',
      metadata: { source: '@vladmandic/face-api', net: 'FaceExpressionNet' },
    }),
    input: faceApiInput(),
    inGraphNormalization: normalization,
    // The graph already applies softmax: `expressions` are probabilities.
    outputs: [
      {
        name: 'expressions',
        task: 'emotion',
        decoding: { type: 'classification', labels: [...FACEAPI_EXPRESSION_LABELS], activation: 'none' },
      },
    ],
    ...encoderSpec(features.channels, features.size),
    heads: [head],
    source: await source(modelName),
  };
}

/**
 * AgeGenderNet (TinyXception with 2 main blocks, 112 -> 7x7x512). Outputs `age` [N,1] in years (raw regression)
 * and `gender` [N,2] softmax probabilities [male, female] (face-api: male when p[0] > 0.5).
 */
export async function buildFaceApiAgeGender(modelDir?: string): Promise<FaceApiNetBuild> {
  const modelName = 'age_gender_model';
  const net = new FaceApiGraph('faceapi_age_gender', await readFaceApiWeights(modelName, modelDir), modelName);
  const conv = net.conv(net.normalizedInput(), FACEAPI_INPUT_SIZE, 'entry_flow/conv_in', 2);
  let x = { out: net.relu(conv.out, 'entry_flow/conv_in/relu'), size: conv.size, channels: conv.channels };
  x = net.reductionBlock(x.out, x.size, 'entry_flow/reduction_block_0', false);
  x = net.reductionBlock(x.out, x.size, 'entry_flow/reduction_block_1', true);
  for (let i = 0; i < 2; i++) x = net.mainBlock(x.out, x.size, `middle_flow/main_block_${i}`);
  x = net.reductionBlock(x.out, x.size, 'exit_flow/reduction_block', true);
  const exit = net.separableConv(x.out, x.size, 'exit_flow/separable_conv', 1);
  const features = { out: net.relu(exit.out, 'exit_flow/relu'), size: exit.size, channels: exit.channels };
  const pooled = net.encoderAndPool(features.out);
  const ageHead = net.head(pooled, 'fc/age', 'age', 'none');
  const genderHead = net.head(pooled, 'fc/gender', 'gender', 'softmax', 'gender_logits');
  net.g.output(FACEAPI_TENSORS.features, ['N', features.channels, features.size, features.size]);
  net.g.output(FACEAPI_TENSORS.pooled, ['N', features.channels]);
  net.g.output('age', ['N', 1]);
  net.g.output('gender', ['N', 2]);
  net.g.output('gender_logits', ['N', 2]);
  return {
    name: 'faceapi-age-gender',
    model: net.g.build({
      docString: 'face-api AgeGenderNet (age in years, gender), built from its weights',
      metadata: { source: '@vladmandic/face-api', net: 'AgeGenderNet' },
    }),
    input: faceApiInput(),
    inGraphNormalization: normalization,
    outputs: [
      { name: 'age', task: 'age', decoding: { type: 'age-years', scale: 1 } },
      // The graph already applies softmax: `gender` holds probabilities [male, female].
      { name: 'gender', task: 'gender', decoding: { type: 'classification', labels: [...FACEAPI_GENDER_LABELS], activation: 'none' } },
    ],
    ...encoderSpec(features.channels, features.size),
    heads: [ageHead, genderHead],
    source: await source(modelName),
  };
}

/**
 * Maps FaceLandmark68Net's raw output (one face, 136 values in 0..1 of the padded square) to pixels of the
 * image the crop `box` was cut from, exactly as face-api's postProcess + FaceLandmarks do. For a square box
 * this is `x0 + x*side`.
 */
export function decodeFaceApiLandmarks(
  raw: ArrayLike<number>,
  box: { x: number; y: number; width: number; height: number },
): { x: number; y: number }[] {
  if (raw.length !== 136) throw new ModelFormatError(`face-api landmarks: expected 136 values, got ${raw.length}`);
  const side = Math.max(box.width, box.height);
  const padX = (side - box.width) / 2;
  const padY = (side - box.height) / 2;
  return Array.from({ length: 68 }, (_, i) => ({ x: box.x + raw[2 * i]! * side - padX, y: box.y + raw[2 * i + 1]! * side - padY }));
}
