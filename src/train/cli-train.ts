// `kt train` and `kt eval`: fit the KT-Adapter and its comparators on labelled faces, write the table, plots and export; re-render a run.
import { parse, type RegisterCommand } from '../core/cli-args.js';
import { InvalidInputError } from '../core/errors.js';

const TRAIN_HELP = `kt train --task age|emotion [--data NAME|PATH] [options]

  Trains the KT-Adapter for one canonical task on frozen encoders' prior tokens, with every comparator on the same
  seeded split and budget (pre-trained, baseline, ensemble, KT, ablations, capacity control), writes
  results.json, report.md/table.md, PNG curves and a t-SNE of k'/p'_c into --out, and exports the KT model as one
  ONNX graph into the model repository as kt-<task>/<next version>.

  --task age|emotion       age: canonical faceres, Wing loss; emotion: canonical emotion, cross-entropy
  --data NAME|PATH         shared dataset (age-utkface, emotion-fer2013) or a path (age: labels.csv with file,age;
                           emotion: class folders). Default: the task's shared dataset
  --data-root DIR          root of the shared datasets (default ../shared/data or $KT_DATA_ROOT)
  --canonical NAME         canonical encoder (default: faceres / emotion)
  --priors a,b,...         prior encoders in order (default age: agegender,expression,landmarks68,emotion,facemesh;
                           emotion: faceres,expression,agegender,landmarks68,facemesh)
  --variants a,b,...       baseline, ensemble, kt, kt-zero (capacity control, always added with a KT variant),
                           kt-no-dm, kt-no-cm, kt-pe, kt-priors<N> (first N priors). Default: all of
                           baseline,ensemble,kt,kt-zero,kt-priors2,kt-no-dm,kt-no-cm,kt-pe
  --epochs N               maximum epochs (default 8), early stopping on the validation split
  --ablation-epochs N      maximum epochs of the ablations (default: --epochs)
  --batch-size N           default 64
  --lr X                   peak learning rate, AdamW warm-up + cosine (default 3e-4)
  --patience N             epochs without validation improvement before stopping (default 3)
  --drop-threshold X       drop-mask tau (default 0.5)
  --seed S                 split, initialisation, shuffling and drop masks (default 1)
  --out DIR                output folder (default out/train/<task>)
  --repo DIR               model repository (default: the project's, or $KT_MODEL_REPOSITORY)
  --cache-dir DIR          prior-token cache folder (default .cache/)
  --no-export              do not export the KT model
  Set KT_TF_BACKEND=tensorflow|wasm|cpu to choose the TF.js backend; the one that ran is printed.
`;

export function registerTrainCommands(register: RegisterCommand): void {
  register('train', 'train a KT-Adapter and its comparators; table, plots, ONNX export', async (argv) => {
    const { values } = parse(argv, {
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
      'cache-dir': { type: 'string' },
      'no-export': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    });
    if (values.help) {
      process.stdout.write(TRAIN_HELP);
      return 0;
    }
    if (!values.task) throw new InvalidInputError('kt train: --task age|emotion is required (see kt train --help)');
    const int = (name: string, v: string | undefined, min: number): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) throw new InvalidInputError(`--${name} must be an integer >= ${min}, got "${v}"`);
      return n;
    };
    const num = (name: string, v: string | undefined): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new InvalidInputError(`--${name} must be a non-negative number, got "${v}"`);
      return n;
    };
    const list = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean));
    const { runExperiment } = await import('./experiment.js');
    const { renderMarkdownTable } = await import('./report.js');
    const priors = list(values.priors);
    const variants = list(values.variants);
    const o = {
      task: values.task,
      data: values.data,
      dataRoot: values['data-root'],
      canonical: values.canonical,
      priors,
      variants,
      epochs: int('epochs', values.epochs, 1),
      ablationEpochs: int('ablation-epochs', values['ablation-epochs'], 1),
      batchSize: int('batch-size', values['batch-size'], 1),
      learningRate: num('lr', values.lr),
      patience: int('patience', values.patience, 1),
      dropMaskThreshold: num('drop-threshold', values['drop-threshold']),
      seed: int('seed', values.seed, 0),
      outDir: values.out,
      repo: values.repo,
      cacheDir: values['cache-dir'],
      export: !values['no-export'],
      command: `kt train ${argv.join(' ')}`,
    };
    const results = await runExperiment(Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as unknown as Parameters<typeof runExperiment>[0]);
    process.stdout.write(`TF.js backend: ${results.backend}\n\n${renderMarkdownTable(results)}\n`);
    return 0;
  });

  register('eval', 'print and re-render (table, report, curves) the results of a kt train run', async (argv) => {
    const { values } = parse(argv, { run: { type: 'string' }, help: { type: 'boolean', default: false } });
    if (values.help || !values.run) {
      process.stdout.write('kt eval --run DIR\n  Re-renders report.md, table.md and the curves from DIR/results.json and prints the table.\n');
      return values.help ? 0 : 2;
    }
    const { readResults, writeReport, renderMarkdownTable } = await import('./report.js');
    const results = await readResults(values.run).catch((e: unknown) => {
      throw new InvalidInputError(`kt eval: no readable results.json in ${values.run}`, { cause: e });
    });
    await writeReport(results, values.run);
    process.stdout.write(`${results.task} on ${results.data} (seed ${results.seed}, TF.js backend ${results.backend})\n\n${renderMarkdownTable(results)}\n`);
    return 0;
  });
}
