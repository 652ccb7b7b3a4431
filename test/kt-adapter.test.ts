// KT-Adapter training runs (seconds each) and ONNX export parity with onnxruntime; the pure maths is in kt-adapter.unit.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Tensor2D } from '@tensorflow/tfjs';
import { loadTf, type Tf } from '../src/train/tfjs-backend.js';
import {
  createKtAdapter,
  createKtAdapterParams,
  disposeKtAdapterParams,
  ktPredictOutput,
  type KtAdapterOptions,
} from '../src/train/kt-adapter.js';
import { createBaselineHead, createEnsembleHead } from '../src/train/heads.js';
import { evaluateModel, trainModel, type TaskSpec } from '../src/train/trainer.js';
import { exportBaselineOnnx, exportKtAdapterOnnx } from '../src/train/export-onnx.js';
import { computeDatasetStats, disposeBatch, gatherBatch, selectPriors, type TokenDataset } from '../src/train/token-dataset.js';
import { encodeModel } from '../src/onnx/proto.js';
import { createSession, runFloat } from '../src/onnx/runtime.js';
import { adapterOptions, maxAbsDiff, perturb, read, syntheticTokens, train, validation } from './helpers/kt-synthetic.js';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf());
});

const silent = (): void => {};

describe('training', () => {
  const task: TaskSpec = { kind: 'regression', outputs: 1, loss: 'wing' };
  const oneOutput = (overrides: Partial<KtAdapterOptions> = {}): KtAdapterOptions =>
    adapterOptions({ decoder: { hidden: [24], outputs: 1 }, ...overrides });

  it('KT training reduces the loss, keeps the best epoch and reports history', async () => {
    const model = createKtAdapter(tf, oneOutput());
    const initial = evaluateModel(model, validation, task);
    const lines: string[] = [];
    const result = await trainModel(model, train, validation, {
      task,
      epochs: 12,
      learningRate: 3e-3,
      patience: 4,
      seed: 1,
      log: (l) => lines.push(l),
    });
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
      const model = createKtAdapter(
        tf,
        oneOutput({ ...overrides, priorWidths: data.priors.map((p) => p.width), stats: computeDatasetStats(data) }),
      );
      const r = await trainModel(model, data, selectPriors(validation, data === train ? [0, 1] : data.priors.map((_, j) => j)), {
        task,
        epochs: 2,
        seed: 9,
        log: silent,
      });
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
    const baseline = createBaselineHead(tf, {
      canonicalWidth: 12,
      canonicalStats: classStats.canonical,
      decoder: { hidden: [16], outputs: 3 },
      outputActivation: 'softmax',
    });
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
    const got = (await runFloat(session, { [exported.inputName]: { data: batch.canonical.dataSync() as Float32Array, dims: [3, 12] } }))[
      exported.outputName
    ]!.data;
    expect(maxAbsDiff(got, expected)).toBeLessThan(1e-5);
    disposeBatch(batch);
    baseline.dispose();
    ensemble.dispose();
  });
});

describe('ONNX export', () => {
  const wideCanonical = syntheticTokens({ count: 32, seed: 5, canonicalWidth: 16 });
  const exportCases: [string, TokenDataset, Partial<KtAdapterOptions>][] = [
    [
      'C_c < D, GELU, positional embedding, softmax output',
      validation,
      { positionalEmbedding: true, decoder: { hidden: [24], outputs: 3 }, outputActivation: 'softmax' },
    ],
    [
      'C_c = D, ReLU FFN, no residual scale, no canonical mask',
      wideCanonical,
      {
        canonicalWidth: 16,
        stats: computeDatasetStats(wideCanonical),
        ffnActivation: 'relu',
        residualScale: 'none',
        canonicalMask: false,
        heads: 2,
      },
    ],
    ['scalar gate, priors zero-padded (the paper form)', validation, { gate: 'scalar', priorProjection: false }],
  ];

  it.each(exportCases)('onnxruntime matches the TF.js inference path within 1e-4 (%s)', async (_, data, overrides) => {
    const params = createKtAdapterParams(tf, adapterOptions(overrides));
    perturb(tf, params, 11);
    const exported = exportKtAdapterOnnx(params, { namePrefix: 'task/' });
    expect(exported.inputName).toBe('task/p_c');
    expect(exported.cost.adapter.macs).toBeGreaterThan(0);
    expect(exported.cost.adapter.macs).toBeLessThan(exported.cost.unfoldedAdapter.macs);
    const { session } = await createSession(encodeModel(exported.model));
    const batch = gatherBatch(tf, data, [0, 1, 2, 3, 4, 5, 6]);
    const expected = read(ktPredictOutput(tf, params, batch.canonical));
    const got = (
      await runFloat(session, {
        [exported.inputName]: { data: Float32Array.from(batch.canonical.dataSync()), dims: [7, data.canonical.width] },
      })
    )[exported.outputName]!.data;
    expect(got.length).toBe(expected.length);
    expect(maxAbsDiff(got, expected)).toBeLessThan(1e-4);
    disposeBatch(batch);
    disposeKtAdapterParams(params);
  });
});
