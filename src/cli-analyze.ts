// `kt analyze <photo>`: the faces of a photo, one line each, and an annotated PNG; in-process or against a running server.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parse, type RegisterCommand } from './core/cli-args.js';
import { InvalidInputError, errorMessage } from './core/errors.js';
import { Task } from './gen/kt/v1/common.js';
import type { ClientTlsOptions } from './sdk/client-options.js';
import type { AnalysisResult } from './sdk/results.js';

const help = `kt analyze <photo> [more photos] [options]
  Finds the faces in a photo (JPEG, PNG or WebP), prints one line per face (box, score, age, gender, emotion)
  and writes the photo with the faces drawn on it as a PNG. Runs the models in this process: no server needed.

  --tasks a,b,...        face tasks (age,gender,emotion,landmarks,embedding,identity,mesh; "detection" alone:
                         boxes only). Default age,gender,emotion,landmarks
  --out DIR              where the annotated PNGs go, as <photo name>.png (default out/analyze)
  --no-draw              no PNG
  --json                 print each result as JSON (the SDK's AnalysisResult) instead of lines
  --server HOST:PORT     ask a running \`kt serve\` through the client SDK instead of loading the models here
  --ca FILE              with --server: CA certificate (PEM) of a TLS server (\`kt certs\` makes one); the bearer
                         token, if the server wants one, is read from $KT_TOKEN
  --cert FILE, --key FILE  with --ca: client certificate and key (PEM) for a server that requires mutual TLS
  --repo DIR             model repository for the in-process run (default $KT_MODEL_REPOSITORY, else model-repository/)
  --help                 print this help
`;

const defaultFaceTasks = 'age,gender,emotion,landmarks';

/** `--tasks` as contract values: task names, or `detection` for detection only. */
async function tasksOfFlag(flag: string): Promise<Task[]> {
  const names = flag
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (names.length === 0) throw new InvalidInputError('--tasks: name at least one task, or "detection" for boxes only');
  const { enumOfTask, taskNames } = await import('./contract/tasks.js');
  return names.map((name) => {
    if (name === 'detection') return Task.TASK_DETECTION;
    const task = taskNames.find((t) => t === name);
    if (task === undefined)
      throw new InvalidInputError(`--tasks: unknown task "${name}" (known: ${taskNames.join(', ')}; "detection" alone for boxes only)`);
    return enumOfTask[task];
  });
}

/** Analyses photos one after the other; `close` releases models or the connection. */
interface Analyzer {
  analyze(photo: Uint8Array): Promise<AnalysisResult>;
  close(): Promise<void>;
}

/** The server's pipeline in this process: the same config defaults, plan and models as `kt serve`, without gRPC. */
async function inProcessAnalyzer(tasks: Task[], repo: string | undefined): Promise<Analyzer> {
  const [
    { resolveServerConfig },
    { createServingContext },
    { planAnalysis },
    { createLogger },
    { AnalysisOptions, Frame },
    { frameResultFromProto },
  ] = await Promise.all([
    import('./server/config.js'),
    import('./server/serving-context.js'),
    import('./server/analysis-plan.js'),
    import('./core/log.js'),
    import('./gen/kt/v1/face_analysis.js'),
    import('./sdk/results.js'),
  ]);
  const config = resolveServerConfig({
    galleryPath: ':memory:',
    mqttEnabled: false,
    watchRepository: false,
    repositoryRescanMs: 0,
    ...(repo === undefined ? {} : { modelRepository: repo }),
  });
  const control = await createServingContext(config, createLogger('analyze', 'warn'));
  const plan = planAnalysis(AnalysisOptions.fromPartial({ tasks }), config, control.ctx.registry);
  return {
    analyze: async (photo) =>
      frameResultFromProto(
        await control.ctx.pipeline.analyze(
          Frame.fromPartial({ image: { source: { $case: 'encoded', value: { data: Buffer.from(photo) } } }, sequence: 1 }),
          plan,
        ),
      ),
    close: () => control.release(),
  };
}

/** TLS material from --ca / --cert / --key (false: plain text), and $KT_TOKEN: a token on the command line would show in `ps`. */
async function clientSecurity(files: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined }) {
  if ((files.cert === undefined) !== (files.key === undefined)) throw new InvalidInputError('--cert and --key go together');
  if (files.cert !== undefined && files.ca === undefined) throw new InvalidInputError('--cert and --key need --ca');
  const read = async (file: string | undefined) => (file === undefined ? undefined : new Uint8Array(await readFile(file)));
  const [rootCerts, certChain, privateKey] = await Promise.all([read(files.ca), read(files.cert), read(files.key)]);
  const tls: ClientTlsOptions | false =
    rootCerts === undefined ? false : { rootCerts, ...(certChain && privateKey ? { certChain, privateKey } : {}) };
  const token = process.env['KT_TOKEN'];
  return { tls, ...(token ? { token } : {}) };
}

async function serverAnalyzer(tasks: Task[], address: string, security: Awaited<ReturnType<typeof clientSecurity>>): Promise<Analyzer> {
  const { FaceAnalysisClient } = await import('./sdk/index.js');
  const client = new FaceAnalysisClient(address, { deadlineMs: 60_000, ...security });
  try {
    await client.waitUntilServing(10_000);
  } catch (e) {
    client.close();
    throw new InvalidInputError(
      `no kt server answers at ${address} (${errorMessage(e)}); start one with \`kt serve\`, or drop --server to analyse in this process`,
    );
  }
  return { analyze: (photo) => client.analyze(photo, { tasks }), close: async () => client.close() };
}

/** Reads, analyses, prints and draws one photo. */
async function analyzePhoto(analyzer: Analyzer, path: string, options: { json: boolean; outDir: string | undefined }): Promise<void> {
  let photo: Uint8Array;
  try {
    photo = await readFile(path);
  } catch (e) {
    throw new InvalidInputError(`cannot read ${path}: ${errorMessage(e)}`);
  }
  const result = await analyzer.analyze(photo);
  const { annotatedPng, faceLine } = await import('./face-report.js');
  let png: string | undefined;
  if (options.outDir !== undefined) {
    png = join(options.outDir, `${basename(path, extname(path))}.png`);
    await mkdir(options.outDir, { recursive: true });
    await writeFile(png, await annotatedPng(photo, result));
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ photo: path, annotatedPng: png ?? null, result }, null, 2)}\n`);
    return;
  }
  const lines = [
    `${path}: ${result.frameWidthPx}x${result.frameHeightPx}, ${result.faces.length} face(s), ${result.timings.totalMs.toFixed(0)} ms`,
  ];
  result.faces.forEach((face, i) => lines.push(`  ${faceLine(i, face)}`));
  if (png !== undefined) lines.push(`  -> ${png}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function registerAnalyzeCommand(register: RegisterCommand): void {
  register('analyze', 'print the faces of a photo (age, gender, emotion) and draw them into a PNG', async (argv) => {
    const { values, positionals } = parse(
      argv,
      {
        tasks: { type: 'string', default: defaultFaceTasks },
        out: { type: 'string', default: join('out', 'analyze') },
        'no-draw': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        server: { type: 'string' },
        repo: { type: 'string' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      true,
    );
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    if (positionals.length === 0) {
      process.stderr.write(`kt analyze: name a photo, e.g. \`kt analyze node_modules/@vladmandic/face-api/demo/sample1.jpg\`\n\n${help}`);
      return 2;
    }
    const tasks = await tasksOfFlag(values.tasks);
    const analyzer =
      values.server !== undefined
        ? await serverAnalyzer(tasks, values.server, await clientSecurity(values))
        : await inProcessAnalyzer(tasks, values.repo);
    try {
      for (const path of positionals)
        await analyzePhoto(analyzer, path, { json: values.json, outDir: values['no-draw'] ? undefined : values.out });
    } finally {
      await analyzer.close();
    }
    return 0;
  });
}
