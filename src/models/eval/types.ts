// Shared shapes of `kt models eval`: the context every task evaluator gets, its result rows, and the manifest entry.
import type { RgbImage } from '../../core/image.js';
import type { DetectedFace } from '../processing/index.js';
import type { LoadedModel } from '../runner.js';

/** Tasks `kt models eval` scores (identity lives in identity.ts, owned separately). */
export type EvalTask = 'age' | 'gender' | 'emotion' | 'landmarks' | 'identity';

/** How a 95 % interval was computed: percentile bootstrap over subjects (or another cluster, e.g. the source image) or over items. */
export type CiMethod = 'bootstrap-subject' | 'bootstrap-image' | 'bootstrap-duplicate-group' | 'bootstrap-item' | 'none';

export interface EvalMetric {
  /** Short name, e.g. "mae", "cs5", "accuracy", "macro_f1", "nme", "tar_at_far_0.1%". */
  name: string;
  value: number;
  /** Percentile bootstrap 95 % interval [lo, hi]; absent where none was computed. */
  ci95?: [number, number];
  /** Unit for display: "years", "%", "" ... Percent metrics are stored in percent (0..100). */
  unit: string;
  higherIsBetter: boolean;
}

/**
 * Per-item values of the primary metric (e.g. absolute error, 1/0 correct, NME of one face), keyed by an item id
 * shared between models on the same data, so that models can be compared pairwise on the same faces.
 * The primary metric must be the mean of `values` (MAE, accuracy, NME, ...).
 */
export interface PairedSamples {
  metric: string;
  ids: string[];
  /** Cluster of each item for the bootstrap (subject, source image, duplicate group, or the id itself). */
  clusters: string[];
  values: number[];
}

/** One model (variant) scored on one dataset for one task. */
export interface EvalResult {
  task: EvalTask;
  /** Dataset name (folder name, e.g. "age-utkface"). */
  dataset: string;
  model: string;
  version: number;
  /** E.g. "aligned" / "unaligned" / "refined-crop"; absent for the plain serving path. */
  variant?: string;
  /** Items scored (faces detected and answered). */
  n: number;
  /** Items in the dataset selection, including those the detector missed. */
  total: number;
  /** Primary metric first. */
  metrics: EvalMetric[];
  ciMethod: CiMethod;
  /** Mean time of crop + model + decode per face (batch of 1), milliseconds; detection excluded. */
  msPerFace: number;
  paired?: PairedSamples;
  /** Extra tables for the report (confusion matrix, per-class recall, bias per age band, per region NME ...). */
  details?: Record<string, unknown>;
  /** Caveats printed under the table (e.g. contamination: the model was trained on this data). */
  notes?: string[];
}

/** What every task evaluator gets from `kt models eval`. */
export interface EvalContext {
  /** Dataset folder, e.g. ../shared/data/identity-orl. */
  dataPath: string;
  /** Dataset name shown in results (the folder's base name). */
  dataset: string;
  /** Model repository folder. */
  repo: string;
  /** At most this many items (seeded sample, stratified where the reader can); undefined: all. */
  limit?: number;
  /** Seed for sampling and the bootstrap. */
  seed: number;
  /** Bootstrap resamples for 95 % intervals (default 1000). */
  bootstrap: number;
  /** The serving detector (config.detectorModel, blazeface) on a frame, with the server's default limits. */
  detect(frame: RgbImage): Promise<DetectedFace[]>;
  /** A repository model by name (highest version), loaded once per run. NotFoundError when absent. */
  load(name: string): Promise<LoadedModel>;
  /** One progress line (stderr). */
  progress(line: string): void;
}

/** A task evaluator: scores the named models (already checked to answer the task) on ctx's dataset. */
export type TaskEvaluator = (ctx: EvalContext, models: string[]) => Promise<EvalResult[]>;

/** One stored result in a model's manifest (`evaluations` in model.json); declared in manifest.ts, which the schema needs. */
export type { ManifestEvaluation } from '../manifest.js';
