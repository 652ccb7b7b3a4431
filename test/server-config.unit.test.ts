// Server config and device profiles: documented defaults, overlay precedence, validation of unknown keys and wrong types.
import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { defaultServerConfig, resolveServerConfig, validateConfigOverlay } from '../src/server/config.js';
import { devicesDirectory, loadDeviceProfile, parseDeviceProfile } from '../src/server/device-profile.js';

describe('ServerConfig', () => {
  it('has documented defaults: 16 MiB messages, LATEST_WINS, loopback only, no reflection', () => {
    expect(defaultServerConfig.maxReceiveMessageBytes).toBe(16 * 1024 * 1024);
    expect(defaultServerConfig.dropPolicy).toBe('LATEST_WINS');
    expect(defaultServerConfig.listenAddress).toBe('127.0.0.1:50051');
    expect(defaultServerConfig.reflection).toBe(false);
  });

  it('merges overlays in order, taskModels per task', () => {
    const c = resolveServerConfig({ maxStreams: 4, taskModels: { age: 'agegender' } }, { maxStreams: 6 });
    expect(c.maxStreams).toBe(6);
    expect(c.taskModels.age).toBe('agegender');
    expect(c.taskModels.emotion).toBe('expression');
  });

  it('rejects unknown keys and wrong types with a clear error', () => {
    expect(() => validateConfigOverlay({ maxstreams: 3 }, 'my.json')).toThrow(
      /my.json: unknown key "maxstreams" \(did you mean "maxStreams"\?\)/,
    );
    expect(() => validateConfigOverlay({ executionProviders: ['gpu'] }, 'x')).toThrow(/"executionProviders" must be a non-empty array of/);
    expect(() => validateConfigOverlay({ dropPolicy: 'NEWEST' }, 'x')).toThrow(/"dropPolicy" must be one of/);
    expect(() => resolveServerConfig({ streamQueueDepth: 9, maxStreamQueueDepth: 8 })).toThrow(/streamQueueDepth/);
  });
});

describe('device profiles', () => {
  it('every devices/*.json loads and validates', async () => {
    const files = (await readdir(devicesDirectory())).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(['jetson-orin.json', 'x86-cpu.json', 'x86-cuda.json']);
    for (const f of files) {
      const profile = await loadDeviceProfile(f.replace(/\.json$/, ''));
      expect(resolveServerConfig(profile.config).executionProviders.at(-1)).toBe('cpu');
    }
    const jetson = await loadDeviceProfile('jetson-orin');
    expect(jetson.config.executionProviders).toEqual(['tensorrt', 'cuda', 'cpu']);
    expect(jetson.notes.join(' ')).toMatch(/CPU-only/);
    expect(jetson.notes.join(' ')).toMatch(/--build_nodejs --use_cuda --use_tensorrt/);
    expect(jetson.notes.join(' ')).toMatch(/only the device id/);
  });

  it('rejects unknown keys at either level', () => {
    expect(() => parseDeviceProfile({ name: 'x', description: '', gpu: true }, 'x.json')).toThrow(/x.json: unknown key "gpu"/);
    expect(() => parseDeviceProfile({ name: 'x', description: '', config: { fp16: true } }, 'x.json')).toThrow(
      /x.json "config": unknown key "fp16"/,
    );
  });
});
