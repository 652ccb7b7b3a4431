// Age, gender and emotion evaluators of `kt models eval`: serving-path answers scored with the papers' metrics.
import type { DecodedOutput } from '../processing/index.js';
import { readAgeUtkface, readEmotionFer, type AgeGenderLabel, type EvalDataset } from './datasets.js';
import { ageBands, classificationReport, cumulativeScore } from './metrics.js';
import { answeredIndices, buildResult, meanMetric, statisticMetric } from './results.js';
import { runServingPath, type EvalRunner } from './serving.js';
import type { EvalContext, EvalResult } from './types.js';

/** The 7 FER2013 classes, the reference label set of emotion evaluation. */
export const FER_EMOTIONS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'] as const;

/** Label spellings of other emotion models mapped onto FER2013's (face-api says fearful, disgusted, surprised). */
const EMOTION_SYNONYMS: Readonly<Record<string, string>> = {
  fearful: 'fear',
  disgusted: 'disgust',
  surprised: 'surprise',
  anger: 'angry',
  happiness: 'happy',
  sadness: 'sad',
};

export const canonicalEmotion = (label: string): string => EMOTION_SYNONYMS[label.toLowerCase()] ?? label.toLowerCase();

const ageOf = (decoded: DecodedOutput[]): number | undefined => {
  const d = decoded.find((o) => o.task === 'age' && o.type === 'age');
  return d?.type === 'age' ? d.years : undefined;
};

const genderOf = (decoded: DecodedOutput[]): 'male' | 'female' | undefined => {
  const d = decoded.find((o) => o.task === 'gender' && o.type === 'gender');
  return d?.type === 'gender' ? d.value.gender : undefined;
};

const emotionOf = (decoded: DecodedOutput[]): string | undefined => {
  const d = decoded.find((o) => o.task === 'emotion' && o.type === 'classification');
  return d?.type === 'classification' ? canonicalEmotion(d.value.label) : undefined;
};

async function runners(ctx: EvalContext, models: readonly string[]): Promise<EvalRunner[]> {
  return Promise.all(models.map(async (name) => ({ model: await ctx.load(name) })));
}

/** Age: MAE (primary), CS@5, and MAE / signed bias per age band, on age-utkface-style data. */
export async function evaluateAge(ctx: EvalContext, models: string[]): Promise<EvalResult[]> {
  const dataset = await readAgeUtkface(ctx.dataPath, ctx.limit, ctx.seed);
  const list = await runners(ctx, models);
  const run = await runServingPath(ctx, dataset, list, (_r, decoded) => ageOf(decoded));
  return list.map((runner, r) => {
    const idx = answeredIndices(run.answers[r]!);
    const predicted = idx.map((i) => run.answers[r]![i]!);
    const truth = idx.map((i) => run.items[i]!.label.age);
    const ids = idx.map((i) => run.items[i]!.id);
    const clusters = idx.map((i) => run.items[i]!.cluster);
    const errors = predicted.map((p, k) => Math.abs(p - truth[k]!));
    return buildResult('age', dataset, run, r, runner, {
      metrics: [
        meanMetric(ctx, 'mae', 'years', false, errors, clusters),
        statisticMetric(ctx, 'cs5', '%', true, clusters, (sel) => cumulativeScore(predicted, truth, sel)),
      ],
      paired: { metric: 'mae', ids, clusters, values: errors },
      details: { bands: ageBands(predicted, truth) },
    });
  });
}

/** Gender: accuracy (primary) on age-utkface-style data (gender 0 male / 1 female). */
export async function evaluateGender(ctx: EvalContext, models: string[]): Promise<EvalResult[]> {
  const dataset: EvalDataset<AgeGenderLabel> = await readAgeUtkface(ctx.dataPath, ctx.limit, ctx.seed);
  const list = await runners(ctx, models);
  const run = await runServingPath(ctx, dataset, list, (_r, decoded) => genderOf(decoded));
  return list.map((runner, r) => {
    const idx = answeredIndices(run.answers[r]!);
    const correct = idx.map((i) => (run.answers[r]![i] === run.items[i]!.label.gender ? 100 : 0));
    const ids = idx.map((i) => run.items[i]!.id);
    const clusters = idx.map((i) => run.items[i]!.cluster);
    const predicted = idx.map((i) => run.answers[r]![i]!);
    const truth = idx.map((i) => run.items[i]!.label.gender);
    const report = classificationReport(predicted, truth, ['male', 'female']);
    return buildResult('gender', dataset, run, r, runner, {
      metrics: [meanMetric(ctx, 'accuracy', '%', true, correct, clusters)],
      paired: { metric: 'accuracy', ids, clusters, values: correct },
      details: { recall: report.recall, confusion: { labels: report.labels, rows: report.confusion } },
    });
  });
}

/** Emotion: accuracy (primary), macro-F1, per-class recall and the confusion matrix, on FER2013-style class folders. */
export async function evaluateEmotion(ctx: EvalContext, models: string[]): Promise<EvalResult[]> {
  const dataset = await readEmotionFer(ctx.dataPath, ctx.limit, ctx.seed);
  const list = await runners(ctx, models);
  const run = await runServingPath(ctx, dataset, list, (_r, decoded) => emotionOf(decoded));
  const labels = [...FER_EMOTIONS];
  return list.map((runner, r) => {
    const idx = answeredIndices(run.answers[r]!);
    const predicted = idx.map((i) => run.answers[r]![i]!);
    const truth = idx.map((i) => canonicalEmotion(run.items[i]!.label.emotion));
    const ids = idx.map((i) => run.items[i]!.id);
    const clusters = idx.map((i) => run.items[i]!.cluster);
    const correct = predicted.map((p, k) => (p === truth[k] ? 100 : 0));
    const report = classificationReport(predicted, truth, labels);
    return buildResult('emotion', dataset, run, r, runner, {
      metrics: [
        meanMetric(ctx, 'accuracy', '%', true, correct, clusters),
        statisticMetric(ctx, 'macro_f1', '%', true, clusters, (sel) => classificationReport(predicted, truth, labels, sel).macroF1),
      ],
      paired: { metric: 'accuracy', ids, clusters, values: correct },
      details: { recall: report.recall, confusion: { labels: report.labels, rows: report.confusion } },
    });
  });
}
