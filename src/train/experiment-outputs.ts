// What a `kt train` run produces after its main KT variant besides the export: the t-SNE of the tokens and the export parity check.
import { join } from 'node:path';
import type { Tensor2D } from '@tensorflow/tfjs';
import { createProgress } from '../core/log.js';
import { normalize } from '../models/processing/index.js';
import type { RepositoryEntry } from '../models/repository.js';
import { encodeModel, readModel } from '../onnx/proto.js';
import { createSession, runFloat } from '../onnx/runtime.js';
import { addOutputs } from '../onnx/subgraph.js';
import type { FaceSample } from './datasets/types.js';
import { knowledgeTokenRows } from './export-model.js';
import { ktPredictOutput, type KtAdapterModel } from './kt-adapter.js';
import { applyOutputActivation } from './tensor-ops.js';
import type { PreparedTask } from './pipeline-tasks.js';
import type { TaskModel } from './pipeline-variants.js';
import { renderScatterPlot, writePng } from './plots.js';
import type { ExperimentResults } from './report.js';
import type { Tf } from './tfjs-backend.js';
import { cropFor, decodeSample, tokenSampleOf } from './token-cache.js';
import { tsne } from './tsne.js';

/** t-SNE of the rows of Z (k' and p'_c) for test samples: what the knowledge token carries next to the canonical row. */
export async function plotTokens(
  inner: KtAdapterModel,
  canonicalTokens: Float32Array,
  count: number,
  maxSamples: number,
  seed: number,
  outDir: string,
  results: ExperimentResults,
  log: (l: string) => void,
): Promise<void> {
  const n = Math.min(count, maxSamples);
  if (n < 4) return;
  const C = inner.params.config.canonicalWidth;
  const { rows, width } = await knowledgeTokenRows(inner.params, canonicalTokens.slice(0, n * C), n);
  const points: Float32Array[] = [];
  for (let i = 0; i < n; i++) points.push(rows.slice(2 * i * width, (2 * i + 1) * width));
  for (let i = 0; i < n; i++) points.push(rows.slice((2 * i + 1) * width, (2 * i + 2) * width));
  const progress = createProgress('t-SNE', 1000, log, 5000);
  let last = 0;
  const embedded = tsne(points, {
    seed,
    iterations: 1000,
    onProgress: (it) => {
      progress.tick(undefined, it - last);
      last = it;
    },
  });
  progress.done(`KL ${embedded.kl.toFixed(3)}`);
  const file = join(outDir, 'tsne-tokens.png');
  await writePng(
    file,
    renderScatterPlot({
      title: `${results.task}: t-SNE of k' and p'_c (test)`,
      width: 1100,
      height: 720,
      groups: [
        { name: "k' (knowledge)", points: embedded.embedding.slice(0, n).map((p) => [p[0]!, p[1]!] as const) },
        { name: "p'_c (canonical)", points: embedded.embedding.slice(n).map((p) => [p[0]!, p[1]!] as const) },
      ],
    }),
  );
  results.tsne = { file, samples: n, kl: embedded.kl };
}

export interface ParityResult {
  samples: number;
  /** Decoder output (probabilities) of ORT on images vs TF.js on cached tokens. */
  maxAbsDiff: number;
  /** The task output (age in years / emotion probabilities). */
  outputMaxAbsDiff: number;
  output: string;
}

/**
 * Runs the exported graph with ONNX Runtime on test images (preprocessed as the token cache does) and compares it with
 * the TF.js inference path (ktPredict) on the cached canonical tokens of the same images.
 */
export async function checkExportParity(
  tf: Tf,
  inner: TaskModel['inner'],
  wrapped: TaskModel,
  task: PreparedTask,
  modelPath: string,
  canonical: RepositoryEntry,
  samples: readonly FaceSample[],
  canonicalTokens: Float32Array,
): Promise<ParityResult> {
  const m = canonical.manifest;
  const n = samples.length;
  const C = canonical.manifest.encoder!.width;
  const outputName = task.exportOutputs[0]!.name;
  const images = await Promise.all(samples.map(async (s) => cropFor(m, await decodeSample(tokenSampleOf(s)), tokenSampleOf(s))));
  const model = addOutputs(await readModel(modelPath), ['kt/y']);
  const { session } = await createSession(encodeModel(model));
  let ort: Record<string, { data: Float32Array; dims: number[] }>;
  try {
    ort = await runFloat(session, { [m.input.name]: normalize(images, m.input) }, ['kt/y', outputName]);
  } finally {
    await session.release();
  }
  const x = tf.tensor2d(canonicalTokens.slice(0, n * C), [n, C]) as Tensor2D;
  const probs =
    inner.kind === 'kt-adapter'
      ? ktPredictOutput(tf, inner.params, x)
      : tf.tidy(() => applyOutputActivation(tf, inner.predict({ canonical: x, priors: [] }), inner.outputActivation) as Tensor2D);
  const taskOut = wrapped.model.predict({ canonical: x, priors: [] });
  const tfProbs = probs.dataSync() as Float32Array;
  let tfOut = taskOut.dataSync() as Float32Array;
  if (task.expectedValueBins === undefined) tfOut = tfProbs;
  x.dispose();
  probs.dispose();
  taskOut.dispose();
  const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((acc, v, i) => Math.max(acc, Math.abs(v - b[i]!)), 0);
  return {
    samples: n,
    maxAbsDiff: maxDiff(ort['kt/y']!.data, tfProbs),
    outputMaxAbsDiff: maxDiff(ort[outputName]!.data, tfOut),
    output: outputName,
  };
}
