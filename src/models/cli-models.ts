// `kt models build|list|eval`: build the repository from npm packages, show it as a table, score models on labelled data.
import { parse, type RegisterCommand } from '../core/cli-args.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, errorMessage } from '../core/errors.js';
import type { ManifestEvaluation } from './manifest.js';

const buildHelp = `kt models build [options]
  Converts the face models shipped by @vladmandic/human and @vladmandic/face-api into
  <repo>/<name>/<version>/model.onnx + model.json. Idempotent: up-to-date models are skipped.

  --repo DIR             model repository (default $KT_MODEL_REPOSITORY, else model-repository/ in the package)
  --only a,b,...         build only these models (names as in \`kt models list\`)
  --force                rebuild models that are up to date
  --if-needed            the default behaviour, kept for npm postinstall
  --package-dir NAME=DIR take npm package NAME from DIR instead of node_modules (repeatable)
  --precision a,b        also write reduced-precision versions: int8 (models with a stored calibration, see
                         \`kt models quantize\`), fp16 (serving defaults, for GPU profiles). Default: none
  --help                 print this help
`;

const listHelp = `kt models list [options]
  Prints the model repository as a table: name, version, kind, tasks, input, encoder tensor and size.

  --repo DIR             model repository (default $KT_MODEL_REPOSITORY, else model-repository/ in the package)
  --json                 print JSON (the manifests with path and bytes) instead of the table
  --help                 print this help
  Below the table: each model's stored evaluations (\`kt models eval --write\`).
`;

const evalHelp = `kt models eval --task T --data DIR [options]
  Scores every model that answers task T on labelled faces through the serving path (detector, crop, model,
  decode), with 95 % bootstrap intervals, the paired difference against the server's default model for T on the
  same faces, and milliseconds per face. Prints a table, writes <out>/<task>-<dataset>.png and .json.

  --task T               age | gender | emotion | landmarks | identity
  --data DIR             labelled dataset folder, e.g. ../shared/data/age-utkface (age, gender),
                         ../shared/data/emotion-fer2013, ../shared/data/landmarks-wflw, ../shared/data/identity-orl
  --models a,b,...       models to score (default: every repository model answering T)
  --limit N              at most N faces (seeded sample keeping every age decade / class)
  --out DIR              report folder (default out/eval)
  --write                store the results into each model's model.json (\`evaluations\`, shown by \`kt models list\`)
  --baseline NAME        model for paired differences (default: the server's default for T)
  --seed N               sampling and bootstrap seed (default 1)
  --bootstrap N          bootstrap resamples (default 1000)
  --repo DIR             model repository (default $KT_MODEL_REPOSITORY, else model-repository/ in the package)
  --help                 print this help
`;

export function registerModelCommands(register: RegisterCommand): void {
  register('models build', 'build the ONNX model repository from the installed npm face models', runModelsBuild);
  register('models list', 'print the model repository as a table', runModelsList);
  register('models eval', 'score the models of a task on labelled faces (table, PNG, manifest evaluations)', runModelsEval);
  register('models quantize', 'write an int8 (static QDQ) version of a model, with its measured speed and accuracy change', async (argv) =>
    (await import('./quantize/cli-quantize.js')).runModelsQuantize(argv),
  );
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidInputError(`${flag} expects a positive integer, got "${value}"`);
  return n;
}

async function runModelsEval(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    task: { type: 'string' },
    data: { type: 'string' },
    models: { type: 'string' },
    limit: { type: 'string' },
    out: { type: 'string', default: join('out', 'eval') },
    write: { type: 'boolean', default: false },
    baseline: { type: 'string' },
    seed: { type: 'string' },
    bootstrap: { type: 'string' },
    repo: { type: 'string' },
    help: { type: 'boolean', default: false },
  });
  if (values.help) {
    process.stdout.write(evalHelp);
    return 0;
  }
  if (!values.task) throw new InvalidInputError('kt models eval needs --task (age, gender, emotion, landmarks or identity)');
  if (!values.data) throw new InvalidInputError('kt models eval needs --data DIR (a labelled dataset folder)');
  const { defaultRepositoryPath } = await import('./repository.js');
  const { runEvaluation, writeEvaluations } = await import('./eval/run.js');
  const { formatReport } = await import('./eval/report.js');
  const { renderEvalPlot } = await import('./eval/plot.js');
  const repo = values.repo ?? defaultRepositoryPath();
  const limit = positiveInt(values.limit, '--limit');
  const seed = positiveInt(values.seed, '--seed');
  const bootstrap = positiveInt(values.bootstrap, '--bootstrap');
  const report = await runEvaluation({
    task: values.task,
    data: values.data,
    repo,
    ...(values.models
      ? {
          models: values.models
            .split(',')
            .map((m) => m.trim())
            .filter(Boolean),
        }
      : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(bootstrap !== undefined ? { bootstrap } : {}),
    ...(values.baseline ? { baseline: values.baseline } : {}),
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  const text = formatReport(report);
  process.stdout.write(text);
  const stem = join(values.out, `${report.task}-${report.dataset}`);
  await mkdir(values.out, { recursive: true });
  await writeFile(`${stem}.png`, await renderEvalPlot(report.results, `${report.task} on ${report.dataset}`));
  // Per-face samples stay out of the JSON (they are what the paired differences were computed from).
  const json = { ...report, results: report.results.map(({ paired: _samples, ...r }) => r) };
  await writeFile(`${stem}.json`, `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(`${stem}.txt`, text);
  process.stderr.write(`wrote ${stem}.png, ${stem}.json and ${stem}.txt\n`);
  if (values.write) {
    const written = await writeEvaluations(repo, report);
    process.stderr.write(`stored evaluations in ${written.length} manifest(s): ${written.join(', ')}\n`);
    if (values.task === 'identity') {
      // After the evaluations: each embedding model's threshold, calibrated at the stated FAR, into its `identity` field.
      const { writeIdentityCalibrations } = await import('./eval/identity.js');
      for (const line of await writeIdentityCalibrations(repo, report.results)) process.stderr.write(`${line}\n`);
    }
  }
  return 0;
}

async function runModelsBuild(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    repo: { type: 'string' },
    only: { type: 'string' },
    force: { type: 'boolean', default: false },
    'if-needed': { type: 'boolean', default: false },
    'package-dir': { type: 'string', multiple: true },
    precision: { type: 'string' },
    help: { type: 'boolean', default: false },
  });
  if (values.help) {
    process.stdout.write(buildHelp);
    return 0;
  }
  const packageDirs: Record<string, string> = {};
  for (const pd of values['package-dir'] ?? []) {
    const at = pd.lastIndexOf('=');
    if (at <= 0) throw new InvalidInputError(`--package-dir expects NAME=DIR, got "${pd}"`);
    packageDirs[pd.slice(0, at)] = pd.slice(at + 1);
  }
  const precisions = (values.precision ?? '').split(',').filter(Boolean);
  const badPrecision = precisions.filter((p) => p !== 'int8' && p !== 'fp16');
  if (badPrecision.length) throw new InvalidInputError(`--precision expects int8 and/or fp16, got "${badPrecision.join(',')}"`);
  const { buildRepository } = await import('./build.js');
  const report = await buildRepository({
    precisions: precisions as ('int8' | 'fp16')[],
    ...(values.repo ? { repo: values.repo } : {}),
    ...(values.only ? { only: values.only.split(',') } : {}),
    force: values.force,
    packageDirs,
  });
  process.stderr.write(`model repository ${report.repo}: ${report.built.length} built, ${report.skipped.length} up to date\n`);
  return 0;
}

async function runModelsList(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    repo: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  });
  if (values.help) {
    process.stdout.write(listHelp);
    return 0;
  }
  const { listRepository, defaultRepositoryPath } = await import('./repository.js');
  const repo = values.repo ?? defaultRepositoryPath();
  // A version whose model.json fails its schema is skipped by the listing: say so instead of hiding it.
  const entries = await listRepository(repo, (dir, error) => process.stderr.write(`skipped ${dir}: ${errorMessage(error)}\n`));
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify(
        entries.map((e) => ({ ...e.manifest, path: e.modelPath, bytes: e.bytes })),
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  if (entries.length === 0) {
    process.stderr.write(`no models in ${repo}: run \`kt models build\`\n`);
    return 1;
  }
  const rows = entries.map((e) => {
    const m = e.manifest;
    const inp = `${m.input.size}x${m.input.size} ${m.input.colorOrder} ${m.input.layout}`;
    return [
      m.name,
      m.precision ? `${m.version} ${m.precision.type}` : String(m.version),
      m.kind,
      m.tasks.join(','),
      inp,
      m.encoder?.tensor ?? '-',
      m.encoder ? String(m.encoder.width) : '-',
      m.encoder ? `${m.encoder.spatial.join('x')} ${m.encoder.head}` : '-',
      `${(e.bytes / 1e6).toFixed(1)} MB`,
    ];
  });
  const header = ['NAME', 'VER', 'KIND', 'TASKS', 'INPUT', 'ENCODER TENSOR', 'WIDTH', 'MAP/HEAD', 'SIZE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
  const evaluations = entries.flatMap((e) => evaluationLines(e.manifest.name, e.manifest.version, e.manifest.evaluations ?? []));
  if (evaluations.length) process.stdout.write(`\nEVALUATIONS (kt models eval --write)\n${evaluations.join('\n')}\n`);
  const reduced = entries.filter((e) => e.manifest.precision);
  if (reduced.length) {
    const { precisionLines } = await import('./quantize/cli-quantize.js');
    const lines = reduced.flatMap((e) => precisionLines(e.manifest.name, e.manifest.version, e.manifest.precision!));
    process.stdout.write(`\nREDUCED PRECISION (kt models quantize)\n${lines.join('\n')}\n`);
  }
  return 0;
}

/** One line per task, dataset and variant: every metric with its interval, then n, speed, date and the caveat. */
function evaluationLines(name: string, version: number, evaluations: readonly ManifestEvaluation[]): string[] {
  const groups = new Map<string, ManifestEvaluation[]>();
  for (const v of evaluations) {
    const key = `${v.task} ${v.dataset}${v.variant ? ` (${v.variant})` : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), v]);
  }
  const fixed = (x: number): string => x.toFixed(2);
  return [...groups].map(([key, list]) => {
    const metrics = list.map(
      (v) => `${v.metric} ${fixed(v.value)}${v.unit ? ` ${v.unit}` : ''}${v.ci95 ? ` [${fixed(v.ci95[0])}, ${fixed(v.ci95[1])}]` : ''}`,
    );
    const first = list[0]!;
    const ms = first.msPerFace !== undefined ? `, ${first.msPerFace.toFixed(1)} ms/face` : '';
    return `  ${name} v${version}: ${key}: ${metrics.join(', ')}; n ${first.n}${ms}, ${first.date}${first.note ? `; ${first.note}` : ''}`;
  });
}
