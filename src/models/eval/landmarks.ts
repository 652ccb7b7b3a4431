// Landmark evaluator of `kt models eval`: every model with a 68-mappable landmark output (iBUG-68, MediaPipe-468) on
// WFLW faces, NME over 68 points normalised by the outer eye corners, per region, with an optional refined second crop.
import type { DecodedOutput, DetectedFace, Point } from '../processing/index.js';
import { refinedBoxes } from '../processing/refine-crop.js';
import { runTaskModel, type LoadedModel } from '../runner.js';
import { readLandmarksWflw, type EvalFrame } from './datasets.js';
import { IBUG68_OUTER_EYES, IBUG68_REGIONS, WFLW98_TO_IBUG68, toIbug68 } from './landmark-schemes.js';
import { faceNme } from './metrics.js';
import { answeredIndices, buildResult, meanMetric } from './results.js';
import { runServingPath, type EvalRunner } from './serving.js';
import type { EvalContext, EvalResult } from './types.js';

/** A landmark output of a model whose scheme maps onto iBUG-68, or undefined. */
export function landmarkOutputOf(model: LoadedModel['manifest']): { name: string; scheme: string } | undefined {
  const out = model.outputs.find(
    (o) => o.decoding.type === 'landmarks' && ['ibug68', 'mediapipe468', 'wflw98'].includes(o.decoding.scheme),
  );
  return out && out.decoding.type === 'landmarks' ? { name: out.name, scheme: out.decoding.scheme } : undefined;
}

function points68(decoded: DecodedOutput[]): Point[] | undefined {
  const d = decoded.find((o) => o.type === 'landmarks');
  return d?.type === 'landmarks' ? toIbug68(d.scheme, d.points) : undefined;
}

/** Scale of the refined crop tried on models whose manifest does not ask for one (landmarks68's manifest value). */
export const REFINE_SCALE = 1.1;

/**
 * The other crop strategy of a landmark model, so that both are measured: a model that refines (manifest
 * input.refineCrop) is also run in one pass; one that does not is also run with a refined second crop.
 */
export function alternativeRunner(model: LoadedModel): EvalRunner {
  if (model.manifest.input.refineCrop) {
    return {
      model,
      variant: 'one-pass',
      run: async (frame, face) => (await runTaskModel(model, frame.frame, [face], [], false)).decoded[0]!,
    };
  }
  return {
    model,
    variant: 'refined',
    run: async (frame: EvalFrame, face: DetectedFace) => {
      const first = await runTaskModel(model, frame.frame, [face], [], false);
      const boxes = refinedBoxes(first.decoded, [face], REFINE_SCALE);
      return boxes ? (await runTaskModel(model, frame.frame, [{ box: boxes[0]! }], [], false)).decoded[0]! : first.decoded[0]!;
    },
  };
}

interface FaceScore {
  nme: number;
  regions: Record<string, number>;
}

/** NME (percent of the outer-eye-corner distance) over 68 points and per region for one face. */
export function scoreFace(predicted: readonly Point[], truth68: readonly Point[]): FaceScore {
  const regions: Record<string, number> = {};
  for (const [region, idx] of Object.entries(IBUG68_REGIONS)) regions[region] = faceNme(predicted, truth68, IBUG68_OUTER_EYES, idx);
  return { nme: faceNme(predicted, truth68, IBUG68_OUTER_EYES), regions };
}

/** Landmarks: NME on 68 points (primary), per region (jaw, brows, nose, eyes, mouth) and failure rate at 10 %. */
export async function evaluateLandmarks(ctx: EvalContext, models: string[], options: { refine?: boolean } = {}): Promise<EvalResult[]> {
  const dataset = await readLandmarksWflw(ctx.dataPath, ctx.limit, ctx.seed);
  const loaded = await Promise.all(models.map((name) => ctx.load(name)));
  const list: EvalRunner[] = loaded.flatMap((model) => [{ model }, ...(options.refine === false ? [] : [alternativeRunner(model)])]);
  const run = await runServingPath(ctx, dataset, list, (_r, decoded, frame) => {
    const predicted = points68(decoded);
    if (!predicted || !frame.points) return undefined;
    return scoreFace(
      predicted,
      WFLW98_TO_IBUG68.map((i) => frame.points![i]!),
    );
  });
  return list.map((runner, r) => {
    const idx = answeredIndices(run.answers[r]!);
    const scores = idx.map((i) => run.answers[r]![i]!);
    const ids = idx.map((i) => run.items[i]!.id);
    const clusters = idx.map((i) => run.items[i]!.cluster);
    const nme = scores.map((s) => s.nme);
    return buildResult('landmarks', dataset, run, r, runner, {
      metrics: [
        meanMetric(ctx, 'nme', '%', false, nme, clusters),
        ...Object.keys(IBUG68_REGIONS).map((region) =>
          meanMetric(
            ctx,
            `nme_${region}`,
            '%',
            false,
            scores.map((s) => s.regions[region]!),
            clusters,
          ),
        ),
        meanMetric(
          ctx,
          'fr10',
          '%',
          false,
          nme.map((v) => (v > 10 ? 100 : 0)),
          clusters,
        ),
      ],
      paired: { metric: 'nme', ids, clusters, values: nme },
    });
  });
}
