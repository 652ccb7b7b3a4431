// ONNX export of the KT-Adapter inference path (p_c -> standardise -> pad -> folded 2-token adapter -> gate -> decoder) and of the baseline head.
import { attr, GraphBuilder, type BuildOptions } from '../onnx/graph-builder.js';
import type { ModelProto } from '../onnx/proto.js';
import { readMlp, type DenseWeights, type Mlp } from './dense.js';
import { effectiveGate, type KtAdapterParams, type Linear } from './kt-adapter.js';
import type { HiddenActivation, OutputActivation } from './tensor-ops.js';

export interface OnnxExportOptions {
  /** Prefix of every tensor, initializer and node name, so the graph can be merged after an encoder. Default 'kt/'. */
  namePrefix?: string;
  /** Input name after the prefix. Default 'p_c' (the GAP output of the canonical encoder, [N, C_c]). */
  inputName?: string;
  /** Output name after the prefix. Default 'y'. */
  outputName?: string;
  /** Batch dimension: a symbolic name or a fixed size. Default 'N'. */
  batchDim?: string | number;
  /** Default 'kt-adapter' / 'baseline'. */
  graphName?: string;
  /** Stored as model metadata_props. */
  metadata?: Record<string, string>;
}

/** Per-sample (batch 1) cost; FLOPs = 2 x MACs + one per element-wise output value (activations, norms, biases). */
export interface InferenceCost {
  macs: number;
  flops: number;
}

export interface OnnxExportResult {
  model: ModelProto;
  /** Full (prefixed) input and output names. */
  inputName: string;
  outputName: string;
  cost: {
    /** The adapter after folding: standardise/pad, projections of p_c, 2-token attention, FFN, LayerNorm, gate. */
    adapter: InferenceCost;
    /** The same adapter computed naively on [k, p_c] at width D (no folding, no slicing), for comparison. */
    unfoldedAdapter: InferenceCost;
    decoder: InferenceCost;
  };
}

class CostCounter {
  macs = 0;
  elementwise = 0;
  mac(n: number): void {
    this.macs += n;
  }
  ew(n: number): void {
    this.elementwise += n;
  }
  get result(): InferenceCost {
    return { macs: this.macs, flops: 2 * this.macs + this.elementwise };
  }
}

const read = (v: { dataSync(): unknown }): Float32Array => Float32Array.from(v.dataSync() as Float32Array);

/** First `rows` rows of a row-major [_, cols] matrix. */
const topRows = (m: Float32Array, rows: number, cols: number): Float32Array => m.slice(0, rows * cols);

/** v [n] @ m [n, cols] */
function vecMat(v: Float32Array, m: Float32Array, cols: number): Float32Array {
  const out = new Float32Array(cols);
  for (let r = 0; r < v.length; r++) {
    const a = v[r]!;
    if (a === 0) continue;
    for (let c = 0; c < cols; c++) out[c] = out[c]! + a * m[r * cols + c]!;
  }
  return out;
}

const addVec = (a: Float32Array, b: Float32Array): Float32Array => a.map((x, i) => x + b[i]!);
const scaleVec = (a: Float32Array, s: number): Float32Array => a.map((x) => x * s);

/** Column-concatenates row-major matrices with the same row count. */
function concatColumns(rows: number, parts: readonly { data: Float32Array; cols: number }[]): Float32Array {
  const total = parts.reduce((a, p) => a + p.cols, 0);
  const out = new Float32Array(rows * total);
  for (let r = 0; r < rows; r++) {
    let offset = 0;
    for (const p of parts) {
      out.set(p.data.subarray(r * p.cols, (r + 1) * p.cols), r * total + offset);
      offset += p.cols;
    }
  }
  return out;
}

function emitActivation(
  b: GraphBuilder,
  x: string,
  activation: HiddenActivation | OutputActivation,
  prefix: string,
  count: number,
  cost: CostCounter,
  finalName?: string,
): string {
  const outs = finalName ? [finalName] : 1;
  const single = (op: string, attrs = {}): string => b.node(op, [x], outs, attrs, `${prefix}${op.toLowerCase()}`)[0]!;
  switch (activation) {
    case 'none':
      return finalName ? b.node('Identity', [x], [finalName], {}, `${prefix}identity`)[0]! : x;
    case 'relu':
      cost.ew(count);
      return single('Relu');
    case 'sigmoid':
      cost.ew(count);
      return single('Sigmoid');
    case 'tanh':
      cost.ew(count);
      return single('Tanh');
    case 'softmax':
      cost.ew(3 * count);
      return single('Softmax', { axis: attr.int(-1) });
    case 'relu6':
      cost.ew(count);
      return b.node(
        'Clip',
        [x, b.constF(`${prefix}relu6_min`, [0], []), b.constF(`${prefix}relu6_max`, [6], [])],
        outs,
        {},
        `${prefix}relu6`,
      )[0]!;
    case 'gelu': {
      // 0.5 x (1 + erf(x / sqrt 2)), as in TF.js tensor-ops.gelu (opset 17 has no Gelu).
      cost.ew(5 * count);
      const erf = b.op(
        'Erf',
        [b.op('Mul', [x, b.constF(`${prefix}gelu_rsqrt2`, [Math.SQRT1_2], [])], {}, `${prefix}gelu_scale`)],
        {},
        `${prefix}gelu_erf`,
      );
      const onePlus = b.op('Add', [erf, b.constF(`${prefix}gelu_one`, [1], [])], {}, `${prefix}gelu_add`);
      const half = b.op('Mul', [x, b.constF(`${prefix}gelu_half`, [0.5], [])], {}, `${prefix}gelu_half_x`);
      return b.node('Mul', [half, onePlus], outs, {}, `${prefix}gelu`)[0]!;
    }
  }
}

/** MatMul + Add (+ activation) per layer, then the output activation into `outputName`. */
function emitMlp(
  b: GraphBuilder,
  input: string,
  layers: readonly DenseWeights[],
  outputActivation: OutputActivation,
  prefix: string,
  outputName: string,
  cost: CostCounter,
): void {
  let x = input;
  layers.forEach((layer, i) => {
    const p = `${prefix}decoder/dense${i}/`;
    cost.mac(layer.inputs * layer.outputs);
    cost.ew(layer.outputs);
    const y = b.op(
      'Add',
      [
        b.op('MatMul', [x, b.constF(`${p}kernel`, layer.kernel, [layer.inputs, layer.outputs])], {}, `${p}matmul`),
        b.constF(`${p}bias`, layer.bias, [layer.outputs]),
      ],
      {},
      `${p}bias_add`,
    );
    x = emitActivation(b, y, layer.activation, p, layer.outputs, cost);
  });
  emitActivation(b, x, outputActivation, `${prefix}decoder/output_`, layers[layers.length - 1]!.outputs, cost, outputName);
}

/** The graph under construction, its cost counter, adapter node naming and the adapter's sizes. */
interface AdapterEmitter {
  b: GraphBuilder;
  cost: CostCounter;
  /** Adapter node / initializer name: `<prefix>adapter/<name>`. */
  p: (name: string) => string;
  params: KtAdapterParams;
  /** Token width D, canonical width C_c, heads h, head width d_head. */
  D: number;
  Cc: number;
  h: number;
  dh: number;
}

/** k, p_c's positional embedding and the weights, with everything that depends only on k folded into constants. */
interface FoldedToken {
  tokenK: Float32Array;
  peC: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  bq: Float32Array;
  bk: Float32Array;
  bv: Float32Array;
  bo: Float32Array;
  /** k's query (scaled by 1/sqrt(d_head)), key and value, and its attention logit on itself per head. */
  queryK: Float32Array;
  keyK: Float32Array;
  valueK: Float32Array;
  logitKK: Float32Array;
}

const kernelOf = (l: Linear): Float32Array => read(l.kernel);
const biasOf = (l: Linear): Float32Array => read(l.bias);

/**
 * The KT-Adapter inference path as one ONNX graph (opset 17) from p_c [N, C_c] to y [N, outputs]:
 * k is a constant, so its Q/K/V (and the positional embedding) fold into constants; rows of the Q/K/V kernels that
 * only multiply the zero padding of p^_c are sliced away; the softmax over two keys becomes a sigmoid of the logit
 * difference; 1/sqrt(d_head) is folded into the query weights. Equals ktPredictOutput within float rounding.
 */
export function exportKtAdapterOnnx(params: KtAdapterParams, options: OnnxExportOptions = {}): OnnxExportResult {
  const { config } = params;
  const prefix = options.namePrefix ?? 'kt/';
  const D = config.tokenWidth;
  const h = config.heads;
  const batch = options.batchDim ?? 'N';
  const b = new GraphBuilder(options.graphName ?? 'kt-adapter');
  const e: AdapterEmitter = {
    b,
    cost: new CostCounter(),
    p: (name) => `${prefix}adapter/${name}`,
    params,
    D,
    Cc: config.canonicalWidth,
    h,
    dh: D / h,
  };
  const inputName = b.input(`${prefix}${options.inputName ?? 'p_c'}`, [batch, e.Cc]);
  const outputName = `${prefix}${options.outputName ?? 'y'}`;

  const folded = foldKnowledgeToken(e);
  const standardised = emitStandardise(e, inputName);
  const { attendedRows, axis1 } = emitAttention(e, folded, standardised);
  const normalised = emitOutputAndFfn(e, folded, attendedRows, standardised, axis1);
  const decoderInput = emitGatedResidual(e, normalised, inputName, axis1);
  const adapterCost = e.cost.result;

  const decoderCost = new CostCounter();
  emitMlp(b, decoderInput, readMlp(params.decoder), config.outputActivation, prefix, outputName, decoderCost);
  b.output(outputName, [batch, params.decoder.layers[params.decoder.layers.length - 1]!.kernel.shape[1]!]);
  const build: BuildOptions = {
    producerName: 'kt-edge-face/kt-adapter',
    metadata: { kind: 'kt-adapter', tokenWidth: String(D), heads: String(h), ...(options.metadata ?? {}) },
  };
  return {
    model: b.build(build),
    inputName,
    outputName,
    cost: { adapter: adapterCost, unfoldedAdapter: unfoldedAdapterCost(params), decoder: decoderCost.result },
  };
}

/** Constants of the k token and of p_c's slot. */
function foldKnowledgeToken({ params, D, h, dh }: AdapterEmitter): FoldedToken {
  const scale = 1 / Math.sqrt(dh);
  const pe = params.positionalEmbedding ? read(params.positionalEmbedding) : null;
  const peK = pe ? pe.slice(0, D) : new Float32Array(D);
  const peC = pe ? pe.slice(D, 2 * D) : new Float32Array(D);
  const tokenK = addVec(read(params.knowledgeToken), peK);
  const [wq, wk, wv, wo] = [kernelOf(params.query), kernelOf(params.key), kernelOf(params.value), kernelOf(params.attentionOutput)];
  const [bq, bk, bv, bo] = [biasOf(params.query), biasOf(params.key), biasOf(params.value), biasOf(params.attentionOutput)];
  const queryK = scaleVec(addVec(vecMat(tokenK, wq, D), bq), scale);
  const keyK = addVec(vecMat(tokenK, wk, D), bk);
  const valueK = addVec(vecMat(tokenK, wv, D), bv);
  const logitKK = new Float32Array(h).map((_, head) => {
    let s = 0;
    for (let i = head * dh; i < (head + 1) * dh; i++) s += queryK[i]! * keyK[i]!;
    return s;
  });
  return { tokenK, peC, wq, wk, wv, wo, bq, bk, bv, bo, queryK, keyK, valueK, logitKK };
}

/** x = (p_c - mean) / std as one multiply-add. */
function emitStandardise({ b, cost, p, params, Cc }: AdapterEmitter, inputName: string): string {
  const inverseStd = params.stats.canonical.std.map((s) => 1 / s);
  const shift = params.stats.canonical.mean.map((m, i) => -m * inverseStd[i]!);
  cost.ew(2 * Cc);
  return b.op(
    'Add',
    [b.op('Mul', [inputName, b.constF(p('inverse_std'), inverseStd)], {}, p('standardise_scale')), b.constF(p('shift'), shift)],
    {},
    p('standardise'),
  );
}

/**
 * The 2-token attention for both query rows (k and p_c) at once: [N, 2, D] attended values. Q/K/V of p_c: only the
 * first C_c kernel rows meet non-zero inputs; p_c's positional embedding folds into the bias.
 */
function emitAttention(
  { b, cost, p, D, Cc, h, dh }: AdapterEmitter,
  t: FoldedToken,
  standardised: string,
): { attendedRows: string; axis1: string } {
  const scale = 1 / Math.sqrt(dh);
  const qkvKernel = concatColumns(Cc, [
    { data: scaleVec(topRows(t.wq, Cc, D), scale), cols: D },
    { data: topRows(t.wk, Cc, D), cols: D },
    { data: topRows(t.wv, Cc, D), cols: D },
  ]);
  const qkvBias = Float32Array.from([
    ...scaleVec(addVec(vecMat(t.peC, t.wq, D), t.bq), scale),
    ...addVec(vecMat(t.peC, t.wk, D), t.bk),
    ...addVec(vecMat(t.peC, t.wv, D), t.bv),
  ]);
  cost.mac(Cc * 3 * D);
  cost.ew(3 * D);
  const qkv = b.op(
    'Add',
    [
      b.op('MatMul', [standardised, b.constF(p('qkv_kernel'), qkvKernel, [Cc, 3 * D])], {}, p('qkv_matmul')),
      b.constF(p('qkv_bias'), qkvBias),
    ],
    {},
    p('qkv'),
  );
  const [queryC, keyC, valueC] = b.node('Split', [qkv, b.constI64(p('qkv_split'), [D, D, D])], 3, { axis: attr.int(1) }, p('qkv_split'));
  const headShape = b.constI64(p('head_shape'), [-1, h, dh]);
  const heads = (x: string, name: string): string => b.op('Reshape', [x, headShape], {}, p(`${name}_heads`));
  const [qC, kC, vC] = [heads(queryC!, 'query_c'), heads(keyC!, 'key_c'), heads(valueC!, 'value_c')];
  const axis2 = b.constI64(p('axis2'), [2]);
  const headDot = (a: string, c: string, name: string): string => {
    cost.mac(D);
    return b.op('ReduceSum', [b.op('Mul', [a, c], {}, p(`${name}_mul`)), axis2], { keepdims: attr.int(0) }, p(name));
  };
  const qK = b.constF(p('query_k'), t.queryK, [h, dh]);
  const kK = b.constF(p('key_k'), t.keyK, [h, dh]);
  const logitKC = headDot(kC, qK, 'logit_kc'); // query k, key p_c: [N, h]
  const logitCK = headDot(qC, kK, 'logit_ck'); // query p_c, key k
  const logitCC = headDot(qC, kC, 'logit_cc'); // query p_c, key p_c
  // softmax over two keys = sigmoid of the logit difference: weight of key k for each query.
  cost.ew(4 * h);
  const weightKForK = b.op(
    'Sigmoid',
    [b.op('Sub', [b.constF(p('logit_kk'), t.logitKK, [h]), logitKC], {}, p('logit_diff_k'))],
    {},
    p('attention_k'),
  );
  const weightKForC = b.op('Sigmoid', [b.op('Sub', [logitCK, logitCC], {}, p('logit_diff_c'))], {}, p('attention_c'));
  const axis1 = b.constI64(p('axis1'), [1]);
  const unsq = (x: string, axes: string, name: string): string => b.op('Unsqueeze', [x, axes], {}, p(name));
  const weights = unsq(
    b.op(
      'Concat',
      [unsq(weightKForK, axis1, 'attention_k_row'), unsq(weightKForC, axis1, 'attention_c_row')],
      { axis: attr.int(1) },
      p('attention_rows'),
    ),
    b.constI64(p('axis3'), [3]),
    'attention_weights',
  ); // [N,2,h,1]
  // attended = v_c + w (v_k - v_c), for both query rows at once.
  cost.ew(D);
  cost.mac(2 * D);
  cost.ew(2 * D);
  const valueDiff = unsq(b.op('Sub', [b.constF(p('value_k'), t.valueK, [h, dh]), vC], {}, p('value_diff')), axis1, 'value_diff_row');
  const attended = b.op(
    'Add',
    [unsq(vC, axis1, 'value_c_row'), b.op('Mul', [weights, valueDiff], {}, p('attention_mix'))],
    {},
    p('attended'),
  );
  return { attendedRows: b.op('Reshape', [attended, b.constI64(p('rows_shape'), [-1, 2, D])], {}, p('attended_rows')), axis1 };
}

/** A = T + MHSA(T), then Z = LN(A + FFN(A)) on the two rows. */
function emitOutputAndFfn(
  { b, cost, p, params, D, Cc }: AdapterEmitter,
  t: FoldedToken,
  attendedRows: string,
  standardised: string,
  axis1: string,
): string {
  const { config } = params;
  const F = config.ffnHiddenWidth;
  // Output projection, with k's token, p_c's positional embedding and b_o folded into one [2, D] constant.
  const rowOffsets = Float32Array.from([...addVec(t.tokenK, t.bo), ...addVec(t.peC, t.bo)]);
  const padSpec = b.constI64(p('pad_spec'), [0, 1, 0, 0, 0, D - Cc]);
  const standardisedRow = b.op('Unsqueeze', [standardised, axis1], {}, p('standardised_row'));
  const paddedC = b.op('Pad', [standardisedRow, padSpec], { mode: attr.string('constant') }, p('pad')); // [N,2,D], row 0 zero
  cost.mac(2 * D * D);
  cost.ew(2 * 2 * D);
  const projected = b.op('MatMul', [attendedRows, b.constF(p('output_kernel'), t.wo, [D, D])], {}, p('output_matmul'));
  const residual = b.op(
    'Add',
    [b.op('Add', [projected, b.constF(p('row_offsets'), rowOffsets, [2, D])], {}, p('output_bias')), paddedC],
    {},
    p('residual'),
  );

  cost.mac(2 * 2 * D * F);
  cost.ew(2 * (F + D + D));
  const ffnHidden = b.op(
    'Add',
    [
      b.op('MatMul', [residual, b.constF(p('ffn_hidden_kernel'), kernelOf(params.ffnHidden), [D, F])], {}, p('ffn_hidden_matmul')),
      b.constF(p('ffn_hidden_bias'), biasOf(params.ffnHidden)),
    ],
    {},
    p('ffn_hidden'),
  );
  const ffnActivated = emitActivation(b, ffnHidden, config.ffnActivation, p('ffn_'), 2 * F, cost);
  const ffnOut = b.op(
    'Add',
    [
      b.op('MatMul', [ffnActivated, b.constF(p('ffn_output_kernel'), kernelOf(params.ffnOutput), [F, D])], {}, p('ffn_output_matmul')),
      b.constF(p('ffn_output_bias'), biasOf(params.ffnOutput)),
    ],
    {},
    p('ffn_output'),
  );
  const preNorm = b.op('Add', [residual, ffnOut], {}, p('ffn_residual'));
  cost.ew(2 * 8 * D);
  return b.op(
    'LayerNormalization',
    [preNorm, b.constF(p('ln_gamma'), read(params.layerNormGamma)), b.constF(p('ln_beta'), read(params.layerNormBeta))],
    { axis: attr.int(-1), epsilon: attr.float(config.layerNormEpsilon) },
    p('layer_norm'),
  );
}

/** h = p_c + g (k' + p'_c)[:C_c] (x canonical std when residualScale is 'canonical-std'): the decoder's input. */
function emitGatedResidual({ b, cost, p, params, D, Cc }: AdapterEmitter, normalised: string, inputName: string, axis1: string): string {
  cost.ew(D + 2 * Cc);
  const summed = b.op('ReduceSum', [normalised, axis1], { keepdims: attr.int(0) }, p('token_sum'));
  const sliced =
    Cc === D
      ? summed
      : b.op('Slice', [summed, b.constI64(p('slice_start'), [0]), b.constI64(p('slice_end'), [Cc]), axis1], {}, p('slice_canonical'));
  const gateVector = effectiveGate(params);
  return b.op('Add', [inputName, b.op('Mul', [sliced, b.constF(p('gate'), gateVector)], {}, p('gate_mul'))], {}, p('decoder_input'));
}

/** The naive inference cost on [k, p^_c] at width D (k's projections recomputed, no slicing), to show what folding saves. */
export function unfoldedAdapterCost(params: KtAdapterParams): InferenceCost {
  const { tokenWidth: D, ffnHiddenWidth: F, canonicalWidth: Cc } = params.config;
  const macs = 2 * 3 * D * D + 2 * 2 * D + 2 * 2 * D + 2 * D * D + 2 * 2 * D * F;
  const elementwise =
    2 * Cc +
    2 * 3 * D +
    2 * 2 * 3 +
    2 * 2 * D +
    2 * (F + 2 * D) +
    (params.config.ffnActivation === 'gelu' ? 5 : 1) * 2 * F +
    2 * 8 * D +
    D +
    2 * Cc;
  return { macs, flops: 2 * macs + elementwise };
}

/** The baseline head y = MLP(p_c) as ONNX (same naming scheme as the KT export). */
export function exportBaselineOnnx(mlp: Mlp, options: OnnxExportOptions = {}): OnnxExportResult {
  const prefix = options.namePrefix ?? 'kt/';
  const batch = options.batchDim ?? 'N';
  const layers = readMlp(mlp);
  const b = new GraphBuilder(options.graphName ?? 'baseline');
  const inputName = b.input(`${prefix}${options.inputName ?? 'p_c'}`, [batch, layers[0]!.inputs]);
  const outputName = `${prefix}${options.outputName ?? 'y'}`;
  const cost = new CostCounter();
  emitMlp(b, inputName, layers, mlp.outputActivation, prefix, outputName, cost);
  b.output(outputName, [batch, layers[layers.length - 1]!.outputs]);
  const zero = { macs: 0, flops: 0 };
  return {
    model: b.build({ producerName: 'kt-edge-face/baseline', metadata: { kind: 'baseline', ...(options.metadata ?? {}) } }),
    inputName,
    outputName,
    cost: { adapter: zero, unfoldedAdapter: zero, decoder: cost.result },
  };
}
