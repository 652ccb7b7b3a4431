// KT-Adapter without onnxruntime: masking invariants, inference/training consistency, losses, schedule, export cost, tensor leaks.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Tensor2D } from '@tensorflow/tfjs';
import { loadTf, type Tf } from '../src/train/tfjs-backend.js';
import {
  createKtAdapter,
  createKtAdapterParams,
  disposeKtAdapterParams,
  ktDecoderOnCanonical,
  ktForwardTrain,
  ktPredict,
  ktPredictOutput,
} from '../src/train/kt-adapter.js';
import type { KtAdapterOptions } from '../src/train/kt-adapter.js';
import { createBaselineHead } from '../src/train/heads.js';
import { defaultWingLoss, softmaxCrossEntropy, wingLoss, wingValue } from '../src/train/losses.js';
import { createAdamW, learningRateAt } from '../src/train/optimizer.js';
import { trainModel } from '../src/train/trainer.js';
import { exportKtAdapterOnnx } from '../src/train/export-onnx.js';
import { disposeBatch, gatherBatch, type TokenBatch } from '../src/train/token-dataset.js';
import { createRandom, fillNormal } from '../src/train/seeded-random.js';
import { adapterOptions, maxAbsDiff, perturb, read, stats, train, validation } from './helpers/kt-synthetic.js';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf());
});

const silent = (): void => {};

const ablations: [string, Partial<KtAdapterOptions>][] = [
  ['default', {}],
  ['no canonical mask', { canonicalMask: false }],
  ['positional embedding', { positionalEmbedding: true }],
  ['relu FFN, no residual scale', { ffnActivation: 'relu', residualScale: 'none' }],
];

describe('KT-Adapter forward', () => {
  it.each(ablations)('a dropped prior cannot change the output (%s)', (_, overrides) => {
    const params = createKtAdapterParams(tf, adapterOptions(overrides));
    perturb(tf, params);
    const rows = [0, 1, 2, 3];
    // Sample 0 drops prior 0, sample 1 drops both, sample 2 drops prior 1, sample 3 keeps both.
    const droppedPriors = Uint8Array.from([1, 0, 1, 1, 0, 1, 0, 0]);
    const batch = gatherBatch(tf, train, rows);
    const before = read(ktForwardTrain(tf, params, batch, { droppedPriors }));
    // Overwrite exactly the dropped entries with large values.
    const changed: TokenBatch = {
      canonical: batch.canonical,
      priors: batch.priors.map((p, j) =>
        tf.tidy(() => {
          const values = Float32Array.from(p.dataSync());
          const width = p.shape[1];
          for (let i = 0; i < rows.length; i++)
            if (droppedPriors[i * 2 + j] === 1) for (let c = 0; c < width; c++) values[i * width + c] = 1000 * (c % 3) - 777;
          return tf.tensor2d(values, p.shape);
        }),
      ),
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
    perturb(tf, params);
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
    perturb(tf, params);
    expect(maxAbsDiff(read(ktPredict(tf, params, batch.canonical)), decoderOnly)).toBeGreaterThan(1e-4);
    disposeBatch(batch);
    disposeKtAdapterParams(params);
  });

  it('starts exactly at a pre-trained decoder and rejects bad shapes', () => {
    const random = createRandom(5);
    const pretrained = [
      {
        kernel: fillNormal(random, new Float32Array(12 * 6), 0.3),
        bias: fillNormal(random, new Float32Array(6)),
        inputs: 12,
        outputs: 6,
        activation: 'relu' as const,
      },
      {
        kernel: fillNormal(random, new Float32Array(6 * 4), 0.3),
        bias: fillNormal(random, new Float32Array(4)),
        inputs: 6,
        outputs: 4,
        activation: 'softmax' as const,
      },
    ];
    const params = createKtAdapterParams(tf, adapterOptions({ decoder: { pretrained } }));
    expect(params.config.outputActivation).toBe('softmax');
    const x = tf.tensor2d([Array.from({ length: 12 }, (_, i) => i / 10)]);
    const reference = tf.tidy(
      () =>
        tf.softmax(
          tf.add(
            tf.matMul(
              tf.relu(tf.add(tf.matMul(x, tf.tensor2d(pretrained[0]!.kernel, [12, 6])), pretrained[0]!.bias)),
              tf.tensor2d(pretrained[1]!.kernel, [6, 4]),
            ),
            pretrained[1]!.bias,
          ),
        ) as Tensor2D,
    );
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
    const expected = [0, 4.0546510811, 12.527629685, 17.9175946923, 27.9175946923];
    residuals.forEach((r, i) => expect(wingValue(r)).toBeCloseTo(expected[i]!, 6));
    const loss = tf.tidy(() => wingLoss(tf, tf.tensor2d([residuals]), tf.zeros([1, 5])).dataSync()[0]!);
    expect(loss).toBeCloseTo(62.4174701507 / 5, 4);
    expect(defaultWingLoss).toEqual({ width: 10, curvature: 2 });
    const narrow = tf.tidy(() => wingLoss(tf, tf.tensor1d([3]), tf.tensor1d([0]), { width: 2, curvature: 1 }).dataSync()[0]!);
    expect(narrow).toBeCloseTo(3 - (2 - 2 * Math.log(3)), 5);
  });

  it('softmax cross-entropy matches -log p(label)', () => {
    const value = tf.tidy(
      () =>
        softmaxCrossEntropy(
          tf,
          tf.tensor2d([
            [1, 2, 3],
            [0, 0, 0],
          ]),
          tf.tensor1d([2, 0], 'int32'),
        ).dataSync()[0]!,
    );
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
    const adamW = createAdamW(tf, [matrix, vector], {
      schedule: { peakLearningRate: 0.1, warmupSteps: 1, totalSteps: 1000 },
      weightDecay: 0.01,
    });
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

describe('ONNX export cost', () => {
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
    const model = createKtAdapter(
      tf,
      adapterOptions({ decoder: { hidden: [8], outputs: 1 }, positionalEmbedding: true, canonicalMask: false }),
    );
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
