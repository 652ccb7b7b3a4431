// Options of one `kt train` run (ExperimentOptions), their defaults and the one place they are merged.
export interface ExperimentOptions {
  task: string;
  /** Shared dataset name or a path. Default: the task's shared dataset. */
  data?: string;
  /** Root of the shared datasets. Default ../shared/data or $KT_DATA_ROOT. */
  dataRoot?: string;
  canonical?: string;
  priors?: readonly string[];
  /** Variant ids; the capacity control is added whenever a KT variant is asked for. Default: DEFAULT_VARIANTS. */
  variants?: readonly string[];
  /** Maximum epochs. Default 8. */
  epochs?: number;
  /** Maximum epochs of the ablations (no DM, no CM, PE, prior subsets). Default: epochs. */
  ablationEpochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Default 3e-4. */
  learningRate?: number;
  /** Default 3. */
  patience?: number;
  /** Default 0.01. */
  weightDecay?: number;
  /** Default 0.05. */
  warmupFraction?: number;
  /** Drop-mask threshold tau. Default 0.5. */
  dropMaskThreshold?: number;
  /** Seed of the split, initialisation, shuffling and drop masks. Default 1. */
  seed?: number;
  /** Output folder. Default out/train/<task>. */
  outDir?: string;
  /** Model repository the encoders are read from. Default: the project's. */
  repo?: string;
  /** Model repository the KT model is exported into (created when missing). Default: `repo`. */
  exportRepo?: string;
  /** CSV column naming the person in each image; the split then keeps each person on one side. */
  subjectColumn?: string;
  /** CSV column naming duplicate / same-scene groups; the split keeps each group on one side. */
  groupColumn?: string;
  cacheDir?: string;
  /** Export into the repository. Default true. */
  export?: boolean;
  /** Variants to export (with `export`): kt -> kt-<task>, baseline -> kt-<task>-baseline, kt-zero (or control) ->
   * kt-<task>-control. Default ['kt']. */
  exportVariants?: readonly string[];
  /** Weight of self-distillation of the deployment path toward the training path (KT with priors). Default 1. */
  distillationWeight?: number;
  /** Add horizontally mirrored training images as a second view (tokens cached). Default true. */
  flip?: boolean;
  /** Seeds of a multi-seed run (runSeeds): one full run per seed. */
  seeds?: readonly number[];
  /** Test samples shown in the t-SNE. Default 300. */
  tsneSamples?: number;
  /** Test images run through the exported graph for the parity figure. Default 16. */
  paritySamples?: number;
  log?: (line: string) => void;
  /** The command line, stored in the report. */
  command?: string;
}

export const defaultExperimentOptions = {
  epochs: 8,
  batchSize: 64,
  learningRate: 3e-4,
  patience: 3,
  weightDecay: 0.01,
  warmupFraction: 0.05,
  dropMaskThreshold: 0.5,
  seed: 1,
  tsneSamples: 300,
  paritySamples: 16,
  export: true,
  exportVariants: ['kt'] as readonly string[],
  distillationWeight: 1,
  flip: true,
} as const;

/** The options with the defaults filled in (undefined fields do not override a default). */
export function withDefaults(options: ExperimentOptions) {
  return { ...defaultExperimentOptions, ...definedOnly(options), task: options.task };
}

export type ResolvedExperimentOptions = ReturnType<typeof withDefaults>;

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
