// The serving path for evaluation: detect once per frame with the server's detector, pick the labelled face, then per
// model crop, run, decode (runFaceModel: what the server's pipeline calls, box or 5-point aligned crop), timed per face.
import { iou, type DecodedOutput, type DetectedFace } from '../processing/index.js';
import { runFaceModel } from '../aligned-run.js';
import type { LoadedModel } from '../runner.js';
import type { EvalDataset, EvalFrame, EvalItem } from './datasets.js';
import type { EvalContext } from './types.js';

/** One scored configuration: a model, optionally a variant of how it is run (e.g. a refined second crop). */
export interface EvalRunner {
  model: LoadedModel;
  variant?: string;
  /** Default: runFaceModel on the one face. */
  run?: (frame: EvalFrame, face: DetectedFace) => Promise<DecodedOutput[]>;
}

export interface ServingRun<L, A> {
  items: EvalItem<L>[];
  /** Whether the detector found the labelled face. */
  detected: boolean[];
  /** Per runner (same order), the answer per item (undefined: not detected or not answered). */
  answers: (A | undefined)[][];
  /** Per runner, mean milliseconds of crop + model + decode per face. */
  msPerFace: number[];
}

/** Minimum overlap between a detection and the labelled face box for it to count as that face. */
const MIN_TARGET_IOU = 0.2;

/** The detection that is the labelled face: best overlap with the target box, or the best-scoring face. */
export function pickFace(faces: readonly DetectedFace[], target: EvalFrame['target']): DetectedFace | undefined {
  if (!target) return faces[0];
  let best: DetectedFace | undefined;
  let bestIou = MIN_TARGET_IOU;
  for (const f of faces) {
    const o = iou(f.box, target);
    if (o >= bestIou) [best, bestIou] = [f, o];
  }
  return best;
}

export function runOnFace(model: LoadedModel, frame: EvalFrame, face: DetectedFace): Promise<DecodedOutput[]> {
  return runFaceModel(model, frame.frame, [face]).then((r) => r.decoded[0]!);
}

/**
 * Runs every runner on every item's labelled face and collects `answer(runner, decoded, frame, item)`. Detection runs
 * once per item and is shared, so all runners see the same faces (paired comparisons). Prints progress with an ETA.
 */
export async function runServingPath<L, A>(
  ctx: EvalContext,
  dataset: EvalDataset<L>,
  runners: readonly EvalRunner[],
  answer: (runner: EvalRunner, decoded: DecodedOutput[], frame: EvalFrame, item: EvalItem<L>) => A | undefined,
): Promise<ServingRun<L, A>> {
  const { items } = dataset;
  const detected: boolean[] = [];
  const answers = runners.map(() => [] as (A | undefined)[]);
  const spent = runners.map(() => 0);
  const started = performance.now();
  let lastReport = started;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const frame = await dataset.frame(item);
    const face = pickFace(await ctx.detect(frame.frame), frame.target);
    detected.push(face !== undefined);
    for (let r = 0; r < runners.length; r++) {
      if (!face) {
        answers[r]!.push(undefined);
        continue;
      }
      const runner = runners[r]!;
      const t0 = performance.now();
      const decoded = await (runner.run ? runner.run(frame, face) : runOnFace(runner.model, frame, face));
      spent[r]! += performance.now() - t0;
      answers[r]!.push(answer(runner, decoded, frame, item));
    }
    const now = performance.now();
    if (now - lastReport > 5000 || i === items.length - 1) {
      lastReport = now;
      const eta = ((now - started) / (i + 1)) * (items.length - i - 1);
      ctx.progress(`${dataset.name}: ${i + 1}/${items.length} faces, ETA ${Math.round(eta / 1000)} s`);
    }
  }
  const found = detected.filter(Boolean).length;
  return { items, detected, answers, msPerFace: spent.map((ms) => (found ? ms / found : NaN)) };
}

/** Display name of a runner: model, or model:variant. */
export const runnerName = (r: EvalRunner): string => (r.variant ? `${r.model.manifest.name}:${r.variant}` : r.model.manifest.name);
