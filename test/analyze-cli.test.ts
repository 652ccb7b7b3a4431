// `kt analyze <photo>`: face lines with age, gender and emotion, the annotated PNG, --json, --tasks, --server, errors.
// bin/kt.js runs the compiled CLI: `npm run build` (or the pretest step) must have compiled src/ to dist/.
import { readFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../src/core/image.js';
import type { AnalysisResult } from '../src/sdk/results.js';
import type { RunningServer } from '../src/server/server.js';
import { repoRoot, runKt } from './helpers/cli.js';
import { startTestServer } from './helpers/server-fixture.js';

const photo = 'node_modules/@vladmandic/face-api/demo/sample1.jpg';
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kt-analyze-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function faceLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => /^\s+face \d+: box /.test(l));
}

describe('kt analyze in process', () => {
  it('prints three faces with age, gender and emotion and writes out/analyze/sample1.png', async () => {
    const png = join(repoRoot, 'out', 'analyze', 'sample1.png');
    await rm(png, { force: true });
    const run = await runKt(['analyze', photo]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/sample1\.jpg: 1920x1280, 3 face\(s\)/);
    const faces = faceLines(run.stdout);
    expect(faces).toHaveLength(3);
    for (const face of faces)
      expect(face).toMatch(/score 0\.\d\d, age \d+\.\d, gender (female|male) \d\.\d\d, emotion \w+ \d\.\d\d, landmarks 68 \(ibug68\)/);
    // Same size as the photo, and not the photo: boxes and labels were drawn on it.
    const [drawn, original] = await Promise.all([decodeImage(await readFile(png)), decodeImage(await readFile(join(repoRoot, photo)))]);
    expect([drawn.width, drawn.height]).toEqual([1920, 1280]);
    expect(Buffer.compare(Buffer.from(drawn.data), Buffer.from(original.data))).not.toBe(0);
  });

  it('--json --tasks gender --no-draw prints the SDK result with gender only and writes nothing', async () => {
    const run = await runKt(['analyze', photo, '--json', '--tasks', 'gender', '--no-draw', '--out', join(work, 'none')]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { photo: string; annotatedPng: string | null; result: AnalysisResult };
    expect(report.annotatedPng).toBeNull();
    expect(report.result.faces).toHaveLength(3);
    for (const face of report.result.faces) {
      expect(face.gender?.label).toMatch(/male/);
      expect(face.age).toBeUndefined();
    }
    await expect(readFile(join(work, 'none', 'sample1.png'))).rejects.toThrow(/ENOENT/);
  });

  it('--tasks detection draws boxes only', async () => {
    const run = await runKt(['analyze', photo, '--tasks', 'detection', '--out', work]);
    expect(run.code, run.stderr).toBe(0);
    for (const face of faceLines(run.stdout)) expect(face).toMatch(/age -, gender -, emotion -$/);
    expect((await readFile(join(work, 'sample1.png'))).subarray(1, 4).toString()).toBe('PNG');
  });

  it('says what is wrong: an unknown task, a missing photo, no photo at all', async () => {
    const badTask = await runKt(['analyze', photo, '--tasks', 'age,height']);
    expect(badTask.code).toBe(1);
    expect(badTask.stderr).toMatch(/--tasks: unknown task "height" \(known: age, .*"detection" alone for boxes only\)/);
    const missing = await runKt(['analyze', 'no-such-photo.jpg', '--no-draw']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read no-such-photo\.jpg/);
    const none = await runKt(['analyze']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/name a photo/);
    const help = await runKt(['analyze', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--server HOST:PORT/);
  });
});

describe('kt analyze --server', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startTestServer({ tasks: ['age', 'gender', 'emotion', 'landmarks'] });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('asks a running server through the SDK and prints the same faces as the in-process run', async () => {
    const [remote, local] = await Promise.all([
      runKt(['analyze', photo, '--server', server.address, '--no-draw']),
      runKt(['analyze', photo, '--no-draw']),
    ]);
    expect(remote.code, remote.stderr).toBe(0);
    expect(faceLines(remote.stdout)).toEqual(faceLines(local.stdout));
  });

  it('a server that does not answer is a one-line error', async () => {
    const run = await runKt(['analyze', photo, '--server', '127.0.0.1:1', '--no-draw']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no kt server answers at 127\.0\.0\.1:1/);
  });
});
