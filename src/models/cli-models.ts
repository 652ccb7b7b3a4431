// `kt models build|list`: build the repository from npm packages and show it as a table.
import { parse, type RegisterCommand } from '../core/cli-args.js';
import { InvalidInputError, errorMessage } from '../core/errors.js';

const buildHelp = `kt models build [options]
  Converts the face models shipped by @vladmandic/human and @vladmandic/face-api into
  <repo>/<name>/<version>/model.onnx + model.json. Idempotent: up-to-date models are skipped.

  --repo DIR             model repository (default $KT_MODEL_REPOSITORY, else model-repository/ in the package)
  --only a,b,...         build only these models (names as in \`kt models list\`)
  --force                rebuild models that are up to date
  --if-needed            the default behaviour, kept for npm postinstall
  --package-dir NAME=DIR take npm package NAME from DIR instead of node_modules (repeatable)
  --help                 print this help
`;

const listHelp = `kt models list [options]
  Prints the model repository as a table: name, version, kind, tasks, input, encoder tensor and size.

  --repo DIR             model repository (default $KT_MODEL_REPOSITORY, else model-repository/ in the package)
  --json                 print JSON (the manifests with path and bytes) instead of the table
  --help                 print this help
`;

export function registerModelCommands(register: RegisterCommand): void {
  register('models build', 'build the ONNX model repository from the installed npm face models', runModelsBuild);
  register('models list', 'print the model repository as a table', runModelsList);
}

async function runModelsBuild(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    repo: { type: 'string' },
    only: { type: 'string' },
    force: { type: 'boolean', default: false },
    'if-needed': { type: 'boolean', default: false },
    'package-dir': { type: 'string', multiple: true },
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
  const { buildRepository } = await import('./build.js');
  const report = await buildRepository({
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
      String(m.version),
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
  return 0;
}
