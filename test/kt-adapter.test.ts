// KT-Adapter: masking invariants, inference/training consistency, losses, schedule, training, ONNX export parity and tensor leaks.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Tensor2D } from '@tensorflow/tfjs';
import { loadTf, type Tf } from '../src/train/tfjs-backend.js';
import { createKtAdapter, createKtAdapterParams, disposeKtAdapterParams, ktDecoderOnCanonical, ktForwardTrain, ktPredict, ktPredictOutput, type KtAdapterOptions, type KtAdapterParams } from '../src/train/kt-adapter.js';
import { createBaselineHead, createEnsembleHead } from '../src/train/heads.js';
import { defaultWingLoss, softmaxCrossEntropy, wingLoss, wingValue } from '../src/train/losses.js';
import { createAdamW, learningRateAt } from '../src/train/optimizer.js';
import { evaluateModel, trainModel, type TaskSpec } from '../src/train/trainer.js';
import { exportBaselineOnnx, exportKtAdapterOnnx } from '../src/train/export-onnx.js';
import { computeDatasetStats, disposeBatch, gatherBatch, selectPriors, type TokenBatch, type TokenDataset } from '../src/train/token-dataset.js';
import { createRandom, fillNormal } from '../src/train/seeded-random.js';
import { encodeModel } from '../src/onnx/proto.js';
import { createSession, runFloat } from '../src/onnx/runtime.js';
import { syntheticTokens } from './kt-synthetic.js';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf());
});

const silent = (): void => {};
const train = syntheticTokens({ count: 192, seed: 1 });
const validation = syntheticTokens({ count: 96, seed: 2 });
const stats = computeDatasetStats(train);

function adapterOptions(overrides: Partial<KtAdapterOptions> = {}): KtAdapterOptions {
  return { canonicalWidth: 12, priorWidths: [16, 8], stats, decoder: { hidden: [24], outputs: 3 }, tokenWidth: 16, heads: 4, seed: 7, ...overrides };
}

/** Gate and k far from their initial values, so that the adapter really changes the output. */
function perturb(params: KtAdapterParams, seed = 3): void {
  const random = createRandom(seed);
  params.gate.assign(tf.scalar(0.8));
  tf.tidy(() => params.knowledgeToken.assign(tf.tensor1d(fillNormal(random, new Float32Array(params.config.tokenWidth), 1))));
  tf.tidy(() => params.layerNormBeta.assign(tf.tensor1d(fillNormal(random, new Float32Array(params.config.tokenWidth), 0.3))));
}

const read = (t: Tensor2D): Float32Array => { const v = t.dataSync() as Float32Array; t.dispose(); return Float32Array.from(v); };
const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

const ablations: [string, Partial<KtAdapterOptions>][] = [
  ['default', {}],
  ['no canonical mask', { canonicalMask: false }],
  ['positional embedding', { positionalEmbedding: true }],
  ['relu FFN, no residual scale', { ffnActivation: 'relu', residualScale: 'none' }],
];

describe('KT-Adapter forward', () => {
  it.each(ablations)('a dropped prior cannot change the output (%s)', (_, overrides) => {
    const params = createKtAdapterParams(tf, adapterOptions(overrides));
    perturb(params);
    const rows = [0, 1, 2, 3];
    // Sample 0 drops prior 0, sample 1 drops both, sample 2 drops prior 1, sample 3 keeps both.
    const droppedPriors = Uint8Array.from([1, 0, 1, 1, 0, 1, 0, 0]);
    const batch = gatherBatch(tf, train, rows);
    const before = read(ktForwardTrain(tf, params, batch, { droppedPriors }));
    // Overwrite exactly the dropped entries with large values.
    const changed: TokenBatch = {
      canonical: batch.canonical,
      priors: batch.priors.map((p, j) => tf.tidy(() => {
        const values = Float32Array.from(p.dataSync());
        const width = p.shape[1];
        for (let i = 0; i < rows.length; i++) if (droppedPriors[i * 2 + j] === 1) for (let c = 0; c < width; c++) values[i * width + c] = 1000 * (c % 3) - 777;
        return tf.tensor2d(values, p.shape);
      })),
    };
    const after = read(ktForwardTrain(tf, params, changed, { droppedPriors }));
    expect(Array.from(after)).toEqual(Array.from(before));
    // A kept prior does matter (sample 3 keeps both).
    const keptChanged: TokenBatch = { canonical: batch.canonical, priors: [tf.add(batch.priors[0]!, 5) as Tensor2D, batch.priors[1]!] };
    const afterKept = read(ktForwardTrain(tf, params, keptChanged, { droppedPriors }));
    expect(Math.abs(afterKept[9]! - before[9]!) + Math.abs(afterKept[10]! - before[10]!)).toBeGreaterThan(1e-4);
    for (const p of changed.priors) p.dispose();
    keptChanged.priors[0]!.dispose();
    disposeBatch(batch);
    disposeKtAdapterParams(params);
  });

  it.each(ablations)('the inference path equals the training forward with every prior dropped (%s)', (_, overrides) => {
    const params = createKtAdapterParams(tf, adapterOptions(overrides));
    perturb(params);
    const batch = gatherBatch(tf, validation, [0, 1, 2, 3, 4, 5, 6, 7]);
    const inference = read(ktPredict(tf, params, batch.canonical));
    const allDropped = read(ktForwardTrain(tf, params, batch, { droppedPriors: new Uint8Array(16).fill(1) }));
    const allKept = read(ktForwardTrain(tf, params, batch));
    expect(maxAbsDiff(inference, allDropped)).toBeLessThan(1e-5);
    expect(maxAbsDiff(inference, allKept)).toBeGreaterThan(1e-4);
    disposeBatch(batch);
    disposeKtAdapterParams(params);
  });

  it('with g = 0 the output is exactly the decoder on p_c', () => {
    const params = createKtAdapterParams(tf, adapterOptions());
    const batch = gatherBatch(tf, validation, [0, 1, 2, 3, 4]);
    const decoderOnly = read(ktDecoderOnCanonical(tf, params, batch.canonical));
    expect(Array.from(read(ktPredict(tf, params, batch.canonical)))).toEqual(Array.from(decoderOnly));
    expect(Array.from(read(ktForwardTrain(tf, params, batch)))).toEqual(Array.from(decoderOnly));
    perturb(params);
    expect(maxAbsDiff(read(ktPredict(tf, params, batch.canonical)), decoderOnly)).toBeGreaterThan(1e-4);
    disposeBatch(batch);
    disposeKtAdapterParams(params);
  });

  it('starts exactly at a pre-trained decoder and rejects bad shapes', () => {
    const random = createRandom(5);
    const pretrained = [
      { kernel: fillNormal(random, new Float32Array(12 * 6), 0.3), bias: fillNormal(random, new Float32Array(6)), inputs: 12, outputs: 6, activation: 'relu' as const },
      { kernel: fillNormal(random, new Float32Array(6 * 4), 0.3), bias: fillNormal(random, new Float32Array(4)), inputs: 6, outputs: 4, activation: 'softmax' as const },
    ];
    const params = createKtAdapterParams(tf, adapterOptions({ decoder: { pretrained } }));
    expect(params.config.outputActivation).toBe('softmax');
    const x = tf.tensor2d([Array.from({ length: 12 }, (_, i) => i / 10)]);
    const reference = tf.tidy(() => tf.softmax(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, tf.tensor2d(pretrained[0]!.kernel, [12, 6])), pretrained[0]!.bias)), tf.tensor2d(pretrained[1]!.kernel, [6, 4])), pretrained[1]!.bias)) as Tensor2D);
    expect(maxAbsDiff(read(ktPredictOutput(tf, params, x)), read(reference))).toBeLessThan(1e-6);
    expect(() => ktPredict(tf, params, tf.zeros([2, 5]) as Tensor2D)).toThrow(/width/);
    expect(() => createKtAdapterParams(tf, adapterOptions({ tokenWidth: 18, heads: 4 }))).toThrow(/divisible/);
    expect(() => createKtAdapterParams(tf, adapterOptions({ tokenWidth: 8 }))).toThrow(/narrower/);
    x.dispose();
    disposeKtAdapterParams(params);
  });
});

describe('losses and optimiser', () => {
  it('Wing loss matches hand-computed values (w=10, eps=2)', () => {
    // wing(x) = 10 ln(1 + |x|/2) for |x| < 10, else |x| - C with C = 10 - 10 ln 6 = -7.9175946923
    const residuals = [0, 1, -5, 10, 20];
    const expected = [0, 4.0546510811, 12.5276296850, 17.9175946923, 27.9175946923];
    residuals.forEach((r, i) => expect(wingValue(r)).toBeCloseTo(expected[i]!, 6));
    const loss = tf.tidy(() => wingLoss(tf, tf.tensor2d([residuals]), tf.zeros([1, 5])).dataSync()[0]!);
    expect(loss).toBeCloseTo(62.4174701507 / 5, 4);
    expect(defaultWingLoss).toEqual({ width: 10, curvature: 2 });
    const narrow = tf.tidy(() => wingLoss(tf, tf.tensor1d([3]), tf.tensor1d([0]), { width: 2, curvature: 1 }).dataSync()[0]!);
    expect(narrow).toBeCloseTo(3 - (2 - 2 * Math.log(3)), 5);
  });

  it('softmax cross-entropy matches -log p(label)', () => {
    const value = tf.tidy(() => softmaxCrossEntropy(tf, tf.tensor2d([[1, 2, 3], [0, 0, 0]]), tf.tensor1d([2, 0], 'int32')).dataSync()[0]!);
    const p0 = Math.exp(3) / (Math.exp(1) + Math.exp(2) + Math.exp(3));
    expect(value).toBeCloseTo((-Math.log(p0) + Math.log(3)) / 2, 5);
  });

  it('AdamW schedule: linear warm-up then cosine decay', () => {
    const schedule = { peakLearningRate: 1e-3, warmupSteps: 4, totalSteps: 14 };
    expect(learningRateAt(0, schedule)).toBeCloseTo(2.5e-4, 12);
    expect(learningRateAt(1, schedule)).toBeCloseTo(5e-4, 12);
    expect(learningRateAt(3, schedule)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(4, schedule)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(9, schedule)).toBeCloseTo(5e-4, 12);
    expect(learningRateAt(14, schedule)).toBeCloseTo(0, 12);
    expect(learningRateAt(99, schedule)).toBeCloseTo(0, 12);
    const withFloor = { ...schedule, minLearningRate: 1e-4 };
    expect(learningRateAt(9, withFloor)).toBeCloseTo(5.5e-4, 12);
    expect(learningRateAt(4, withFloor)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(14, withFloor)).toBeCloseTo(1e-4, 12);
  });

  it('AdamW decays weights decoupled from the gradient, matrices only', () => {
    const matrix = tf.variable(tf.tensor2d([[2]]), true);
    const vector = tf.variable(tf.tensor1d([2]), true);
    const adamW = createAdamW(tf, [matrix, vector], { schedule: { peakLearningRate: 0.1, warmupSteps: 1, totalSteps: 1000 }, weightDecay: 0.01 });
    const lr = tf.tidy(() => adamW.applyGradients({ [matrix.name]: tf.tensor2d([[0.5]]), [vector.name]: tf.tensor1d([0.5]) }));
    expect(lr).toBeCloseTo(0.1, 12);
    // First step: m^/sqrt(v^) = sign(g) = 1; matrix also decays by lr * wd * theta.
    expect(matrix.dataSync()[0]).toBeCloseTo(2 - 0.1 * (1 + 0.01 * 2), 5);
    expect(vector.dataSync()[0]).toBeCloseTo(2 - 0.1, 5);
    adamW.dispose();
    matrix.dispose();
    vector.dispose();
  });
});

describe('training', () => {
  const task: TaskSpec = { kind: 'regression', outputs: 1, loss: 'wing' };
  const oneOutput = (overrides: Partial<KtAdapterOptions> = {}): KtAdapterOptions => adapterOptions({ decoder: { hidden: [24], outputs: 1 }, ...overrides });

  it('KT training reduces the loss, keeps the best epoch and reports history', async () => {
    const model = createKtAdapter(tf, oneOutput());
    const initial = evaluateModel(model, validation, task);
    const lines: string[] = [];
    const result = await trainModel(model, train, validation, { task, epochs: 12, learningRate: 3e-3, patience: 4, seed: 1, log: (l) => lines.push(l) });
    const final = evaluateModel(model, validation, task);
    expect(result.history.length).toBeGreaterThan(0);
    expect(result.history[result.history.length - 1]!.trainLoss).toBeLessThan(result.history[0]!.trainLoss);
    expect(final.loss).toBeLessThan(initial.loss);
    expect(final.metric).toBeCloseTo(result.bestValidationMetric, 5);
    expect(Math.min(...result.history.map((h) => h.validationMetric))).toBeCloseTo(result.bestValidationMetric, 6);
    expect(lines.some((l) => /train kt-adapter \d+\/\d+/.test(l))).toBe(true);
    expect(Math.abs(model.params.gate.dataSync()[0]!)).toBeGreaterThan(0);
    model.dispose();
  });

  it('is reproducible with a seed, and the ablations and comparators train', async () => {
    const run = async (overrides: Partial<KtAdapterOptions>, data: TokenDataset = train): Promise<number[]> => {
      const model = createKtAdapter(tf, oneOutput({ ...overrides, priorWidths: data.priors.map((p) => p.width), stats: computeDatasetStats(data) }));
      const r = await trainModel(model, data, selectPriors(validation, data === train ? [0, 1] : data.priors.map((_, j) => j)), { task, epochs: 2, seed: 9, log: silent });
      model.dispose();
      return r.history.map((h) => h.trainLoss);
    };
    expect(await run({})).toEqual(await run({}));
    for (const overrides of [{ dropMask: false }, { canonicalMask: false }, { positionalEmbedding: true }, { dropMaskThreshold: 1 }]) {
      const losses = await run(overrides);
      expect(losses.every(Number.isFinite)).toBe(true);
    }
    expect((await run({}, selectPriors(train, [0]))).every(Number.isFinite)).toBe(true);
    expect((await run({}, selectPriors(train, []))).every(Number.isFinite)).toBe(true);

    const classTask: TaskSpec = { kind: 'classification', classes: 3 };
    const classTrain = syntheticTokens({ count: 96, seed: 3, classes: 3 });
    const classValidation = syntheticTokens({ count: 48, seed: 4, classes: 3 });
    const classStats = computeDatasetStats(classTrain);
    const baseline = createBaselineHead(tf, { canonicalWidth: 12, canonicalStats: classStats.canonical, decoder: { hidden: [16], outputs: 3 }, outputActivation: 'softmax' });
    const ensemble = createEnsembleHead(tf, { stats: classStats, outputs: 3, hidden: [16], outputActivation: 'softmax' });
    for (const model of [baseline, ensemble]) {
      const r = await trainModel(model, classTrain, classValidation, { task: classTask, epochs: 3, log: silent });
      expect(r.metricName).toBe('accuracy');
      expect(r.bestValidationMetric).toBeGreaterThan(0);
    }
    const exported = exportBaselineOnnx(baseline.mlp);
    const { session } = await createSession(encodeModel(exported.model));
    const batch = gatherBatch(tf, classValidation, [0, 1, 2]);
    const expected = read(tf.tidy(() => tf.softmax(baseline.predict(batch)) as Tensor2D));
    const got = (await runFloat(session, { [exported.inputName]: { data: batch.canonical.dataSync() as Float32Array, dims: [3, 12] } }))[exported.outputName]!.data;
    expect(maxAbsDiff(got, expected)).toBeLessThan(1e-5);
    disposeBatch(batch);
    baseline.dispose();
    ensemble.dispose();
  });
});

describe('ONNX export', () => {
  const wideCanonical = syntheticTokens({ count: 32, seed: 5, canonicalWidth: 16 });
  const exportCases: [string, TokenDataset, Partial<KtAdapterOptions>][] = [
    ['C_c < D, GELU, positional embedding, softmax output', validation, { positionalEmbedding: true, decoder: { hidden: [24], outputs: 3 }, outputActivation: 'softmax' }],
    ['C_c = D, ReLU FFN, no residual scale, no canonical mask', wideCanonical, { canonicalWidth: 16, stats: computeDatasetStats(wideCanonical), ffnActivation: 'relu', residualScale: 'none', canonicalMask: false, heads: 2 }],
  ];

  it.each(exportCases)('onnxruntime matches the TF.js inference path within 1e-4 (%s)', async (_, data, overrides) => {
    const params = createKtAdapterParams(tf, adapterOptions(overrides));
    perturb(params, 11);
    const exported = exportKtAdapterOnnx(params, { namePrefix: 'task/' });
    expect(exported.inputName).toBe('task/p_c');
    expect(exported.cost.adapter.macs).toBeGreaterThan(0);
    expect(exported.cost.adapter.macs).toBeLessThan(exported.cost.unfoldedAdapter.macs);
    const { session } = await createSession(encodeModel(exported.model));
    const batch = gatherBatch(tf, data, [0, 1, 2, 3, 4, 5, 6]);
    const expected = read(ktPredictOutput(tf, params, batch.canonical));
    const got = (await runFloat(session, { [exported.inputName]: { data: Float32Array.from(batch.canonical.dataSync()), dims: [7, data.canonical.width] } }))[exported.outputName]!.data;
    expect(got.length).toBe(expected.length);
    expect(maxAbsDiff(got, expected)).toBeLessThan(1e-4);
    disposeBatch(batch);
    disposeKtAdapterParams(params);
  });

  it('counts the folded adapter cost: slicing removes the rows that meet padding', () => {
    const narrow = createKtAdapterParams(tf, adapterOptions({ canonicalWidth: 12, tokenWidth: 16 }));
    const D = 16;
    const F = narrow.config.ffnHiddenWidth;
    const cost = exportKtAdapterOnnx(narrow).cost.adapter;
    // QKV of p_c (12 rows), three head dot products, the value mix, the output projection of 2 rows, the FFN of 2 rows.
    expect(cost.macs).toBe(12 * 3 * D + 3 * D + 2 * D + 2 * D * D + 2 * 2 * D * F);
    disposeKtAdapterParams(narrow);
  });
});

describe('resources', () => {
  it('leaks no tensors across create, train, predict, export and dispose', async () => {
    const before = tf.memory().numTensors;
    const model = createKtAdapter(tf, adapterOptions({ decoder: { hidden: [8], outputs: 1 }, positionalEmbedding: true, canonicalMask: false }));
    await trainModel(model, train, validation, { task: { kind: 'regression', outputs: 1 }, epochs: 2, log: silent });
    const batch = gatherBatch(tf, validation, [0, 1]);
    read(model.predict(batch));
    read(model.forwardTrain(batch, createRandom(1)));
    exportKtAdapterOnnx(model.params);
    disposeBatch(batch);
    model.dispose();
    const baseline = createBaselineHead(tf, { canonicalWidth: 12, canonicalStats: stats.canonical, decoder: { hidden: [8], outputs: 1 } });
    await trainModel(baseline, train, validation, { task: { kind: 'regression', outputs: 1 }, epochs: 1, log: silent });
    baseline.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
