// The README's "First steps" walk-through, run command by command: every line of its sh blocks is executed here.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encodePng } from '../src/core/image.js';
import { cropFace } from '../src/models/processing/index.js';
import { ktBin, repoRoot } from './helpers/cli.js';
import { demoFaces } from './helpers/faces.js';
import { freePort } from './helpers/net.js';

/** The commands of the README's "First steps" section: every non-comment line of its ```sh blocks, in order. */
function firstStepsCommands(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## First steps\n'), readme.indexOf('\n## ', readme.indexOf('\n## First steps\n') + 1));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) =>
    m[1]!.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')),
  );
}

const commands = firstStepsCommands();
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kt-first-steps-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * Runs a README line in bash. `npx kt` becomes `node <repo>/bin/kt.js`: the same program, without npm's start-up and
 * without npx's registry fallback when the current folder is not this project (the training step runs in a temp dir).
 */
function runLine(
  line: string,
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', ktLine(line)], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function ktLine(line: string): string {
  return line.replace(/^npx kt /, `node ${ktBin} `);
}

function faceLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => /^\s+face \d+: box /.test(l));
}

it('the section holds the commands this file runs, in order', () => {
  expect(commands).toEqual([
    'npx kt analyze node_modules/@vladmandic/face-api/demo/sample1.jpg',
    'npx kt serve',
    'npx tsx scripts/stream-frames.ts node_modules/@vladmandic/face-api/demo',
    'cat node_modules/@vladmandic/face-api/demo/sample*.jpg | npx tsx scripts/stream-frames.ts -',
    'npx kt train --task age --data my-faces/labels.csv --subject-column person',
  ]);
});

describe('1. analyse a photo', () => {
  it(commands[0]!, async () => {
    const png = join(repoRoot, 'out', 'analyze', 'sample1.png');
    await rm(png, { force: true });
    const run = await runLine(commands[0]!, repoRoot);
    expect(run.code, run.stderr).toBe(0);
    const faces = faceLines(run.stdout);
    expect(faces).toHaveLength(3);
    for (const face of faces) expect(face).toMatch(/age \d+\.\d, gender (female|male) \d\.\d\d, emotion \w+ \d\.\d\d/);
    expect(run.stdout).toContain('-> out/analyze/sample1.png');
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
  });
});

describe('2. stream a folder of frames or MJPEG on stdin to `kt serve`', () => {
  let server: ChildProcess;
  let address: string;

  beforeAll(async () => {
    // A free loopback port instead of the default 127.0.0.1:50051, and no MQTT: other tests may hold both.
    address = `127.0.0.1:${await freePort()}`;
    server = spawn('bash', ['-c', `exec ${ktLine(commands[1]!)} --listen ${address} --no-mqtt`], {
      cwd: work,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await vi.waitFor(
      () => {
        if (server.exitCode !== null) throw new Error(`kt serve exited: ${log}`);
        if (!/health SERVING/.test(log)) throw new Error(`kt serve is not serving yet: ${log}`);
      },
      { timeout: 120_000, interval: 200 },
    );
  });

  afterAll(async () => {
    if (server?.exitCode === null) {
      const exited = new Promise((resolve) => server.once('close', resolve));
      server.kill('SIGTERM');
      await exited;
    }
  });

  it(commands[2]!, async () => {
    const run = await runLine(commands[2]!, repoRoot, { KT_ADDRESS: address });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^sample1\.jpg: 3 face\(s\)/m);
    expect(faceLines(run.stdout).length).toBeGreaterThanOrEqual(18);
    // The folder holds the six photos and three screenshots: nine frames, every one answered.
    expect(run.stdout).toMatch(/done: .*"framesAnswered":9,"framesDropped":0,"framesFailed":0/);
  });

  it(commands[3]!, async () => {
    const run = await runLine(commands[3]!, repoRoot, { KT_ADDRESS: address });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^frame 1: 3 face\(s\)/m);
    for (const face of faceLines(run.stdout)) expect(face).toMatch(/age \d+\.\d, gender \w+ \d\.\d\d, emotion \w+/);
    expect(run.stdout).toMatch(/done: .*"framesSent":6/);
  });
});

/** my-faces/: face crops of face-api's demo photos (two margins each, the same person) with invented ages. */
async function makeMyFaces(dir: string): Promise<{ samples: number; people: number }> {
  await mkdir(join(dir, 'images'), { recursive: true });
  const rows = ['file,age,person'];
  let people = 0;
  for (let n = 1; n <= 6; n++) {
    const { frame, faces } = await demoFaces(n);
    for (const face of faces) {
      const person = `p${++people}`;
      const age = 18 + ((people * 7) % 50);
      for (const margin of [0.15, 0.35]) {
        const file = `images/face${rows.length}.png`;
        const crop = cropFace(frame, face.box, { size: 128, cropMargin: margin, cropSquare: true }).image;
        await writeFile(join(dir, file), await encodePng(crop));
        rows.push(`${file},${age},${person}`);
      }
    }
  }
  await writeFile(join(dir, 'labels.csv'), `${rows.join('\n')}\n`);
  return { samples: rows.length - 1, people };
}

describe('3. train on your own faces', () => {
  it(
    commands[4]!,
    async () => {
      const { samples, people } = await makeMyFaces(join(work, 'my-faces'));
      expect(people).toBeGreaterThanOrEqual(18);
      expect(samples).toBe(2 * people);
      // Appended for the test: the export goes to a temp repository instead of the project's, and one epoch of the KT
      // variant keeps it short (the README command trains every comparator for up to 8 epochs).
      const exportRepo = join(work, 'repo');
      const run = await runLine(`${commands[4]!} --export-repo ${exportRepo} --epochs 1 --variants kt`, work);
      expect(run.code, run.stderr).toBe(0);
      expect(`${run.stdout}${run.stderr}`).toMatch(/subject/i);
      expect(existsSync(join(work, 'out', 'train', 'age', 'table.md'))).toBe(true);
      expect(await readdir(join(exportRepo, 'kt-age'))).toEqual(['1']);
    },
    600_000,
  );
});
