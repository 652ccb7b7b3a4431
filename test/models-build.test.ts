// The install-time model build: idempotence, the listed repository, and clean failure on bad input.
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRepository, packageInfo } from '../src/models/build.js';
import { listRepository } from '../src/models/repository.js';
import { readModel } from '../src/onnx/proto.js';
import { ModelFormatError, NotFoundError, UnsupportedOpError } from '../src/core/errors.js';
import { runKt } from './helpers/cli.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kt-build-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A copy of @vladmandic/human with only the emotion model, so a test can corrupt it. */
async function humanCopy(name: string): Promise<string> {
  const src = packageInfo('@vladmandic/human').dir;
  const dir = join(work, name);
  await cp(join(src, 'package.json'), join(dir, 'package.json'));
  for (const f of ['emotion.json', 'emotion.bin']) await cp(join(src, 'models', f), join(dir, 'models', f));
  return dir;
}

describe('kt models build', () => {
  it('builds a model, verifies it in ORT, and skips it when up to date', async () => {
    const repo = join(work, 'repo-ok');
    const first = await buildRepository({ repo, only: ['emotion', 'landmarks68'], log: () => {} });
    expect(first.built.sort()).toEqual(['emotion', 'landmarks68']);
    const second = await buildRepository({ repo, only: ['emotion', 'landmarks68'], log: () => {} });
    expect(second.built).toEqual([]);
    expect(second.skipped.sort()).toEqual(['emotion', 'landmarks68']);
    const entries = await listRepository(repo);
    const emotion = entries.find((e) => e.manifest.name === 'emotion')!;
    expect(emotion.manifest.encoder).toMatchObject({ tensor: 'encoder/features', width: 256, spatial: [8, 8] });
    expect(emotion.manifest.input).toMatchObject({ size: 64, colorOrder: 'GRAY' });
    // A tampered model file is not "up to date": the hash in the manifest catches it.
    await writeFile(emotion.modelPath, (await readFile(emotion.modelPath)).subarray(0, 1000));
    const third = await buildRepository({ repo, only: ['emotion'], log: () => {} });
    expect(third.built).toEqual(['emotion']);
    await expect(readModel(emotion.modelPath)).resolves.toBeDefined();
  });

  it('fails on an unsupported op, naming op and node, and leaves nothing half-written', async () => {
    const pkg = await humanCopy('human-badop');
    const jsonPath = join(pkg, 'models', 'emotion.json');
    const json = JSON.parse(await readFile(jsonPath, 'utf8')) as { modelTopology: { node: { op: string; name: string }[] } };
    const victim = json.modelTopology.node.find((n) => n.op === 'Relu')!;
    victim.op = 'Erfinv';
    await writeFile(jsonPath, JSON.stringify(json));
    const repo = join(work, 'repo-badop');
    const err = await buildRepository({ repo, only: ['emotion'], packageDirs: { '@vladmandic/human': pkg }, log: () => {} }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UnsupportedOpError);
    expect((err as UnsupportedOpError).op).toBe('Erfinv');
    expect((err as Error).message).toContain(victim.name);
    expect(await readdir(repo)).toEqual([]);
  });

  it('fails on truncated weights with a clear error and leaves nothing half-written', async () => {
    const pkg = await humanCopy('human-truncated');
    const bin = join(pkg, 'models', 'emotion.bin');
    await writeFile(bin, (await readFile(bin)).subarray(0, 5000));
    const repo = join(work, 'repo-trunc');
    const err = await buildRepository({ repo, only: ['emotion'], packageDirs: { '@vladmandic/human': pkg }, log: () => {} }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toMatch(/truncated/);
    expect(await readdir(repo)).toEqual([]);
  });

  it('reports a missing package as NotFoundError', async () => {
    const err = await buildRepository({
      repo: join(work, 'repo-missing'),
      only: ['emotion'],
      packageDirs: { '@vladmandic/human': join(work, 'nowhere') },
      log: () => {},
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
  });

  it('CLI: exits non-zero with a clear message for a missing package, an unknown model and a bad flag', async () => {
    const missing = await runKt([
      'models',
      'build',
      '--repo',
      join(work, 'cli-missing'),
      '--only',
      'emotion',
      '--package-dir',
      `@vladmandic/human=${join(work, 'nowhere')}`,
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NotFoundError: npm package @vladmandic\/human/);
    const unknown = await runKt(['models', 'build', '--repo', join(work, 'cli-unknown'), '--only', 'nosuchmodel']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no zoo model named nosuchmodel/);
    const badFlag = await runKt(['models', 'build', '--frobnicate']);
    expect(badFlag.code).toBe(1);
    expect(badFlag.stderr).toMatch(/Unknown option '--frobnicate'/);
  });

  it('CLI: `kt models list` prints the installed repository with a detector and the task models', async () => {
    const res = await runKt(['models', 'list']);
    expect(res.code).toBe(0);
    const rows = res.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s{2,}/));
    const byName = new Map(rows.map((r) => [r[0], r]));
    expect(byName.get('blazeface')?.[2]).toBe('detector');
    for (const [name, task, width] of [
      ['faceres', 'age', '1024'],
      ['faceres', 'embedding', '1024'],
      ['emotion', 'emotion', '256'],
      ['landmarks68', 'landmarks', '256'],
      ['expression', 'emotion', '256'],
    ] as const) {
      const row = byName.get(name);
      expect(row, name).toBeDefined();
      expect(row![3]!.split(',')).toContain(task);
      expect(row![5]).toBe('encoder/features');
      expect(row![6]).toBe(width);
    }
  });
});
