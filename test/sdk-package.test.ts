// The lean SDK package: packed from dist/, installed into a throw-away project, used by a plain JS and a strict TS consumer.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../src/server/server.js';
import { repoRoot } from './helpers/cli.js';
import { demoPhotoPath } from './helpers/faces.js';
import { npmFlags, packSdk, sdkConsumer } from './helpers/sdk-pack.js';
import { startTestServer } from './helpers/server-fixture.js';

const run = promisify(execFile);
const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');

/** Bytes under `dir` (files only, links not followed). */
function treeBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((sum, e) => {
    const path = join(dir, e.name);
    return sum + (e.isDirectory() ? treeBytes(path) : e.isFile() ? statSync(path).size : 0);
  }, 0);
}

const jsConsumer = `import { readFile } from 'node:fs/promises';
import { FaceAnalysisClient } from 'kt-edge-face-sdk';
import { definePlugin } from 'kt-edge-face-sdk/plugin';

const [address, photo] = process.argv.slice(2);
if (typeof definePlugin !== 'function') throw new Error('kt-edge-face-sdk/plugin: no definePlugin');
const client = new FaceAnalysisClient(address);
try {
  await client.waitUntilServing(30000);
  const result = await client.analyze(await readFile(photo), { tasks: ['age', 'gender', 'emotion'] });
  console.log(result.faces.length + ' faces in ' + result.frameWidthPx + 'x' + result.frameHeightPx);
  for (const f of result.faces) {
    const b = f.box;
    console.log('face ' + [b.x, b.y, b.width, b.height].map(Math.round).join(',') + ' score ' + f.score.toFixed(2) +
      ' age ' + f.age?.years.toFixed(0) + ' ' + f.gender?.label + ' ' + f.emotion?.label);
  }
} finally {
  client.close();
}
`;

const tsConsumer = `import { readFile } from 'node:fs/promises';
import { FaceAnalysisClient, isRpcError, type AnalysisResult, type FaceResult, type TaskName } from 'kt-edge-face-sdk';
import { definePlugin, type PluginInstance } from 'kt-edge-face-sdk/plugin';

const [address, photo] = process.argv.slice(2);
if (address === undefined || photo === undefined) throw new Error('usage: main.js ADDRESS PHOTO');
if (typeof definePlugin !== 'function') throw new Error('kt-edge-face-sdk/plugin: no definePlugin');
const tasks: TaskName[] = ['age', 'gender'];
const describeFace = (f: FaceResult): string => \`\${f.gender?.label ?? '?'} \${f.age ? Math.round(f.age.years) : '?'}\`;
let facesSeen = 0;
const counter: PluginInstance = {
  onResult(result) {
    facesSeen += result.faces.length;
  },
};
const client = new FaceAnalysisClient(address, { deadlineMs: 60_000 });
try {
  await client.waitUntilServing(30_000);
  const result: AnalysisResult = await client.analyze(await readFile(photo), { tasks });
  await counter.onResult(result, { streamId: 'ts-consumer' });
  console.log(\`ts: \${result.faces.length} faces: \${result.faces.map(describeFace).join(', ')}; plugin saw \${facesSeen}\`);
} catch (e) {
  console.error(isRpcError(e) ? \`rpc error \${e.message}\` : e);
  process.exitCode = 1;
} finally {
  client.close();
}
`;

const tsConfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2022'],
    types: ['node'],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    outDir: 'dist',
  },
  include: ['main.ts'],
};

describe('the kt-edge-face-sdk package', () => {
  let work: string;
  let consumer: string;
  let tarball: string;
  let server: RunningServer;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'kt-sdk-package-'));
    consumer = join(work, 'consumer');
    tarball = packSdk(work);
    sdkConsumer(consumer, tarball);
    server = await startTestServer({ tasks: ['age', 'gender', 'emotion'] });
  }, 600_000); // a stale dist/ means a full tsc run, then pack and an npm install on a loaded 2-core box

  afterAll(async () => {
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('is small, has no install scripts and depends only on the gRPC client stack', () => {
    const installed = JSON.parse(readFileSync(join(consumer, 'node_modules/kt-edge-face-sdk/package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const lock = JSON.parse(readFileSync(join(consumer, 'node_modules/.package-lock.json'), 'utf8')) as {
      packages: Record<string, unknown>;
    };
    const packages = Object.keys(lock.packages).filter((p) => p.startsWith('node_modules/'));
    const report = {
      tarballBytes: statSync(tarball).size,
      packagesInstalled: packages.length,
      nodeModulesBytes: treeBytes(join(consumer, 'node_modules')),
    };
    console.info(`sdk package: ${JSON.stringify(report)}`);
    expect(installed['scripts']).toBeUndefined();
    const dependencies = Object.keys(installed['dependencies'] as object);
    expect(dependencies).toContain('@grpc/grpc-js');
    expect(dependencies.filter((d) => !['@grpc/grpc-js', '@bufbuild/protobuf', '@sinclair/typebox'].includes(d))).toEqual([]);
    // mqtt only for the mqtt-forward plugin: an optional peer, never installed by default.
    expect(installed['peerDependenciesMeta'] ?? {}).toEqual(installed['peerDependencies'] ? { mqtt: { optional: true } } : {});
    expect(packages).not.toContain('node_modules/mqtt');
    expect(packages.some((p) => /onnxruntime|tensorflow|sharp|better-sqlite3|pino/.test(p))).toBe(false);
    expect(report.tarballBytes).toBeLessThan(500_000);
  });

  it('serves a plain JavaScript ESM consumer: the three faces of demo sample1.jpg', async () => {
    writeFileSync(join(consumer, 'consumer.mjs'), jsConsumer);
    const { stdout } = await run(process.execPath, ['consumer.mjs', server.address, demoPhotoPath(1)], { cwd: consumer });
    console.info(`plain-JS consumer printed:\n${stdout}`);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^3 faces in \d+x\d+$/);
    expect(lines.slice(1)).toHaveLength(3);
    for (const line of lines.slice(1)) expect(line).toMatch(/^face \d+,\d+,\d+,\d+ score 0\.\d\d age \d+ (male|female) \w+$/);
  });

  it('typechecks a strict TypeScript consumer (exactOptionalPropertyTypes, NodeNext) and runs it', async () => {
    writeFileSync(join(consumer, 'main.ts'), tsConsumer);
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(tsConfig, null, 2));
    // A TypeScript consumer brings its own @types/node (the main project's version, from the npm cache) and tsc (the main project's).
    const typesNode = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> })
      .devDependencies['@types/node'];
    await run('npm', ['install', '--save-dev', `@types/node@${typesNode}`, ...npmFlags], { cwd: consumer });
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: consumer }).catch((e: { stdout?: string }) => {
      throw new Error(`tsc failed on the strict consumer:\n${e.stdout ?? String(e)}`);
    });
    const { stdout } = await run(process.execPath, ['dist/main.js', server.address, demoPhotoPath(1)], { cwd: consumer });
    expect(stdout).toMatch(/^ts: 3 faces: ((male|female) \d+(, )?){3}; plugin saw 3\n$/);
  });
});
