// `kt train` and `kt eval`: fit the KT-Adapter and its comparators on labelled faces, write the table, plots and export; re-render a run.
import { parse, type CommandOptions, type ParsedFlags, type RegisterCommand } from '../core/cli-args.js';
import { InvalidInputError } from '../core/errors.js';
import type { ExperimentOptions } from './experiment.js';

export const TRAIN_HELP = `kt train --task age|emotion [--data NAME|PATH] [options]

  Trains the KT-Adapter for one canonical task on frozen encoders' prior tokens, with every comparator on the same
  seeded split and budget (pre-trained, baseline, ensemble, KT, ablations, capacity control), writes
  results.json, report.md/table.md, PNG curves and a t-SNE of k'/p'_c into --out, and exports the KT model as one
  ONNX graph into the model repository (--export-repo, default --repo) as kt-<task>/<next version>.

  --task age|emotion       age: Wing loss on years; emotion: cross-entropy
  --data NAME|PATH         shared dataset (age-utkface, emotion-fer2013) or a path (age: a CSV with file,age, file
                           paths absolute or relative to the CSV, or a folder holding labels.csv; emotion: class
                           folders). Default: the task's shared dataset. Missing or unreadable images are reported
                           (counts and the first names) and left out; the run stops when none is left
  --subject-column COL     CSV column naming the person in each image: the split keeps every person on one side
                           (stratified as usual). Without it (or --group-column) the CSV is split by image
  --group-column COL       CSV column naming duplicate or same-scene groups: the split keeps every group on one side
  --data-root DIR          root of the shared datasets (default ../shared/data or $KT_DATA_ROOT)
  --canonical NAME         canonical encoder (default: the model the server answers the task with: agegender for
                           age, expression for emotion)
  --priors a,b,...         prior encoders in order (default: every other encoder; age: faceres,expression,landmarks68,
                           emotion,facemesh; emotion: emotion,faceres,agegender,landmarks68,facemesh)
  --variants a,b,...       baseline, ensemble (shipped head + zero-initialised prior branch), kt, kt-zero (capacity
                           control, always added with a KT variant), kt-no-distill, kt-scalar-gate, kt-no-dm, kt-no-cm,
                           kt-pe, kt-priors<N> (first N priors). Default: all of baseline,ensemble,kt,kt-zero,
                           kt-no-distill,kt-scalar-gate,kt-priors2,kt-no-dm,kt-no-cm,kt-pe
  --epochs N               maximum epochs (default 8), early stopping on the validation split
  --ablation-epochs N      maximum epochs of the ablations (default: --epochs, the same schedule as the main rows)
  --distill W              weight of self-distillation: every batch the inference path (no priors) also learns the
                           drop-masked training path's output (KL for classes, L1 on age); 0 turns it off (default 1)
  --no-flip                no mirrored training images (default: each training image also as its mirror, one of
                           the two per step; their tokens are cached under their own key)
  --seeds a,b,...|N        one full run per seed (N: seeds 1..N) into --out/seed-<s>, then summary.md/summary.json:
                           every row's mean and 95 % t-interval over seeds, paired differences vs kt-zero, baseline and
                           pre-trained; only the first seed exports. A finished seed-<s> run already in --out (same
                           task and variants) is reused, so seeds can be added by a later run
  --batch-size N           default 64
  --lr X                   peak learning rate, AdamW warm-up + cosine (default 3e-4)
  --patience N             epochs without validation improvement before stopping (default 3)
  --drop-threshold X       drop-mask tau (default 0.5)
  --seed S                 split, initialisation, shuffling and drop masks (default 1)
  --out DIR                output folder (default out/train/<task>)
  --repo DIR               model repository the encoders are read from (default: the project's, or
                           $KT_MODEL_REPOSITORY)
  --export-repo DIR        model repository the KT model is exported into, created when missing (default: --repo)
  --cache-dir DIR          prior-token cache folder (default .cache/)
  --export a,b,...         variants to export (default kt): kt -> kt-<task>, baseline -> kt-<task>-baseline,
                           kt-zero or control -> kt-<task>-control, others kt-<task>-<variant>
  --no-export              do not export anything
  Set KT_TF_BACKEND=tensorflow|wasm|cpu to choose the TF.js backend; the one that ran is printed.
`;

/** The flags of `kt train`; every one is described in TRAIN_HELP (a test checks that). */
export const TRAIN_FLAGS = {
  task: { type: 'string' },
  data: { type: 'string' },
  'data-root': { type: 'string' },
  canonical: { type: 'string' },
  priors: { type: 'string' },
  variants: { type: 'string' },
  epochs: { type: 'string' },
  'ablation-epochs': { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  patience: { type: 'string' },
  'drop-threshold': { type: 'string' },
  seed: { type: 'string' },
  out: { type: 'string' },
  repo: { type: 'string' },
  'export-repo': { type: 'string' },
  'subject-column': { type: 'string' },
  'group-column': { type: 'string' },
  'cache-dir': { type: 'string' },
  distill: { type: 'string' },
  'no-flip': { type: 'boolean', default: false },
  seeds: { type: 'string' },
  export: { type: 'string' },
  'no-export': { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const satisfies CommandOptions;

export function registerTrainCommands(register: RegisterCommand): void {
  register('train', 'train a KT-Adapter and its comparators; table, plots, ONNX export', runTrainCommand);
  register('eval', 'print and re-render (table, report, curves) the results of a kt train run', runEvalCommand);
}

async function runTrainCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, TRAIN_FLAGS);
  if (values.help) {
    process.stdout.write(TRAIN_HELP);
    return 0;
  }
  const options = experimentOptionsOf(values, argv);
  // Loaded on use: TF.js and the training code are heavy, and `kt serve` never needs them.
  const { runExperiment } = await import('./experiment.js');
  const { renderMarkdownTable } = await import('./report.js');
  if (options.seeds) {
    const { runSeeds } = await import('./seeds.js');
    const { markdown } = await runSeeds({ ...options, seeds: options.seeds }, runExperiment);
    process.stdout.write(`${markdown}
`);
    return 0;
  }
  const results = await runExperiment(options);
  process.stdout.write(`TF.js backend: ${results.backend}\n\n${renderMarkdownTable(results)}\n`);
  return 0;
}

async function runEvalCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { run: { type: 'string' }, help: { type: 'boolean', default: false } });
  if (values.help || !values.run) {
    process.stdout.write(
      'kt eval --run DIR\n  Re-renders report.md, table.md and the curves from DIR/results.json and prints the table.\n',
    );
    return values.help ? 0 : 2;
  }
  const { readResults, writeReport, renderMarkdownTable } = await import('./report.js');
  const results = await readResults(values.run).catch((e: unknown) => {
    throw new InvalidInputError(`kt eval: no readable results.json in ${values.run}`, { cause: e });
  });
  await writeReport(results, values.run);
  process.stdout.write(
    `${results.task} on ${results.data} (seed ${results.seed}, TF.js backend ${results.backend})\n\n${renderMarkdownTable(results)}\n`,
  );
  return 0;
}

function intFlag(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidInputError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

function numberFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidInputError(`--${name} must be a non-negative number, got "${v}"`);
  return n;
}

/** `--seeds 1,2,3` or `--seeds 5` (seeds 1..5). */
export function seedsFlag(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map((s) => s.trim());
  const ints = parts.map((p) => Number(p));
  if (parts.some((p) => p === '') || ints.some((n) => !Number.isInteger(n) || n < 0))
    throw new InvalidInputError(`--seeds takes a count or a list of integers >= 0, got "${v}"`);
  if (ints.length === 1) {
    if (ints[0]! < 1) throw new InvalidInputError(`--seeds ${v}: a count must be >= 1`);
    return Array.from({ length: ints[0]! }, (_, i) => i + 1);
  }
  if (new Set(ints).size !== ints.length) throw new InvalidInputError(`--seeds ${v} lists a seed twice`);
  return ints;
}

const listFlag = (v: string | undefined): string[] | undefined =>
  v === undefined
    ? undefined
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

/** The experiment options of the parsed flags (unset flags left out, so the experiment's defaults apply). */
function experimentOptionsOf(values: ParsedFlags<typeof TRAIN_FLAGS>['values'], argv: readonly string[]): ExperimentOptions {
  if (!values.task) throw new InvalidInputError('kt train: --task age|emotion is required (see kt train --help)');
  const o = {
    task: values.task,
    data: values.data,
    dataRoot: values['data-root'],
    canonical: values.canonical,
    priors: listFlag(values.priors),
    variants: listFlag(values.variants),
    epochs: intFlag('epochs', values.epochs, 1),
    ablationEpochs: intFlag('ablation-epochs', values['ablation-epochs'], 1),
    batchSize: intFlag('batch-size', values['batch-size'], 1),
    learningRate: numberFlag('lr', values.lr),
    patience: intFlag('patience', values.patience, 1),
    dropMaskThreshold: numberFlag('drop-threshold', values['drop-threshold']),
    seed: intFlag('seed', values.seed, 0),
    outDir: values.out,
    repo: values.repo,
    exportRepo: values['export-repo'],
    subjectColumn: values['subject-column'],
    groupColumn: values['group-column'],
    cacheDir: values['cache-dir'],
    export: !values['no-export'],
    exportVariants: listFlag(values.export),
    distillationWeight: numberFlag('distill', values.distill),
    flip: values['no-flip'] ? false : undefined,
    seeds: seedsFlag(values.seeds),
    command: `kt train ${argv.join(' ')}`,
  };
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as unknown as ExperimentOptions;
}
