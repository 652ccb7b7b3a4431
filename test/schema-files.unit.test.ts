// Acceptance of issue 7's schema item on real files: a bad model.json in a copy of the repository, a config file with a
// misspelt key (JSON and YAML), a bad device profile; each error names the source, the field and the nearest name.
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfigFile } from '../src/core/config-file.js';
import { ModelFormatError } from '../src/core/errors.js';
import { schemaProblems } from '../src/core/schema.js';
import { modelManifestSchema } from '../src/models/manifest.js';
import { defaultRepositoryPath, listRepository, resolveModel } from '../src/models/repository.js';
import { loadServerConfigFile, resolveServerConfig } from '../src/server/config.js';
import { devicesDirectory, loadDeviceProfile } from '../src/server/device-profile.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kt-schema-files-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The message of what `run` rejects with. */
async function failure(run: () => Promise<unknown>): Promise<Error> {
  const e = await run().then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(Error);
  return e as Error;
}

describe('model.json', () => {
  it('every manifest in the built repository passes the schema', async () => {
    const repo = defaultRepositoryPath();
    for (const name of await readdir(repo)) {
      for (const version of (await readdir(join(repo, name))).filter((v) => /^\d+$/.test(v))) {
        const manifest = JSON.parse(await readFile(join(repo, name, version, 'model.json'), 'utf8')) as unknown;
        expect(schemaProblems(modelManifestSchema, manifest), `${name}/${version}`).toEqual([]);
      }
    }
  });

  it('a bad manifest in a copy of the repository is an error naming the model and the field', async () => {
    const repo = join(work, 'repo');
    const dir = join(repo, 'emotion', '1');
    await mkdir(dir, { recursive: true });
    const original = join(defaultRepositoryPath(), 'emotion', '1');
    await symlink(join(original, 'model.onnx'), join(dir, 'model.onnx'));
    const manifest = JSON.parse(await readFile(join(original, 'model.json'), 'utf8')) as Record<string, unknown> & {
      input: Record<string, unknown>;
    };
    const { colorOrder, ...input } = manifest.input;
    await writeFile(join(dir, 'model.json'), JSON.stringify({ ...manifest, version: '1', input: { ...input, colourOrder: colorOrder } }));

    const problems: string[] = [];
    expect(await listRepository(repo, (_dir, e) => problems.push((e as Error).message))).toEqual([]);
    expect(problems).toHaveLength(1);
    const err = await failure(() => resolveModel('emotion', undefined, repo));
    expect(err).toBeInstanceOf(ModelFormatError);
    expect(err.message).toMatch(/^model emotion version 1 \(.*model\.json\): invalid model\.json: /);
    expect(err.message).toContain('"version" must be an integer >= 1, got "1"');
    expect(err.message).toContain('unknown key "input.colourOrder" (did you mean "input.colorOrder"?)');
    expect(err.message).toContain('"input.colorOrder" is required (one of "RGB", "BGR", "GRAY")');
    process.stdout.write(`bad model.json: ${err.message}\n`);
  });
});

describe('config files', () => {
  it('a YAML config file with listenAdress: the error names the file and suggests listenAddress', async () => {
    const file = join(work, 'bad.yaml');
    await writeFile(file, 'listenAdress: 127.0.0.1:50051\nmaxStreams: 4\n');
    const err = await failure(() => loadServerConfigFile(file));
    expect(err.message).toBe(`${file}: unknown key "listenAdress" (did you mean "listenAddress"?)`);
    process.stdout.write(`bad config: ${err.message}\n`);
  });

  it('YAML and JSON files give the same overlay; "$schema" is allowed', async () => {
    const yamlFile = join(work, 'good.yml');
    const jsonFile = join(work, 'good.json');
    await writeFile(yamlFile, '# edge box\n$schema: ../schemas/server-config.schema.json\nmaxStreams: 4\ntaskModels:\n  age: agegender\n');
    await writeFile(
      jsonFile,
      JSON.stringify({ $schema: '../schemas/server-config.schema.json', maxStreams: 4, taskModels: { age: 'agegender' } }),
    );
    const fromYaml = await loadServerConfigFile(yamlFile);
    expect(fromYaml).toEqual({ maxStreams: 4, taskModels: { age: 'agegender' } });
    expect(await loadServerConfigFile(jsonFile)).toEqual(fromYaml);
    expect(resolveServerConfig(fromYaml).taskModels).toMatchObject({ age: 'agegender', emotion: 'expression' });
  });

  it('syntax errors name the line and column', async () => {
    const yamlFile = join(work, 'broken.yaml');
    const jsonFile = join(work, 'broken.json');
    await writeFile(yamlFile, 'maxStreams: 4\nmaxStreams: 5\n');
    await writeFile(jsonFile, '{\n  "maxStreams": 4,\n  "tasks": [\'age\']\n}\n');
    expect((await failure(() => readConfigFile(yamlFile))).message).toMatch(/broken\.yaml:2:1: invalid YAML: Map keys must be unique/);
    expect((await failure(() => readConfigFile(jsonFile))).message).toMatch(/broken\.json:3:13: invalid JSON: /);
  });
});

describe('device profiles', () => {
  it('every shipped profile points at its schema', async () => {
    for (const f of (await readdir(devicesDirectory())).filter((n) => n.endsWith('.json'))) {
      const raw = JSON.parse(await readFile(join(devicesDirectory(), f), 'utf8')) as { $schema?: string };
      expect(raw.$schema, f).toBe('../schemas/device-profile.schema.json');
    }
  });

  it('a bad YAML profile (a wrong type and a misspelt key) lists both with the file named', async () => {
    const file = join(work, 'edge-box.yaml');
    await writeFile(file, 'name: edge-box\ndescription: a test box\nnotes: one line\nconfig:\n  maxStreams: four\n  intraOpThread: 2\n');
    const err = await failure(() => loadDeviceProfile(file));
    expect(err.message).toBe(
      `device profile ${file}: "notes" must be an array of strings, got "one line"; ` +
        `device profile ${file} "config": unknown key "intraOpThread" (did you mean "intraOpThreads"?); "maxStreams" must be an integer in 1..10000, got "four"`,
    );
    process.stdout.write(`bad device profile: ${err.message}\n`);
  });

  it('a profile may be YAML in the devices folder', async () => {
    const devices = join(work, 'devices');
    await cp(devicesDirectory(), devices, { recursive: true });
    await writeFile(join(devices, 'pi5.yaml'), 'name: pi5\ndescription: Raspberry Pi 5\nconfig:\n  intraOpThreads: 4\n');
    expect(await loadDeviceProfile('pi5', devices)).toEqual({
      name: 'pi5',
      description: 'Raspberry Pi 5',
      notes: [],
      config: { intraOpThreads: 4 },
    });
  });
});
