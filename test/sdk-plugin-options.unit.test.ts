// Plugin SDK options without a server: unknown and bad options are typed errors, defaults merge with what is given.
import { describe, expect, it } from 'vitest';
import { definePlugin, isPluginOptionError, webhookPlugin } from '../src/sdk/index.js';

describe('plugin SDK options', () => {
  it('rejects unknown and bad options with a typed error', async () => {
    const err = await webhookPlugin({ url: 'http://127.0.0.1:9/', retries: 3 } as never).catch((e: unknown) => e);
    expect(isPluginOptionError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', plugin: 'webhook', option: 'retries' });
    await expect(webhookPlugin({ url: 'http://127.0.0.1:9/', timeoutMs: -1 })).rejects.toMatchObject({
      name: 'PluginOptionError',
      option: 'timeoutMs',
    });
    await expect(webhookPlugin({})).rejects.toMatchObject({ name: 'PluginOptionError', option: 'url' });

    const custom = definePlugin({
      name: 'count',
      description: 'counts results',
      defaults: { every: 1, label: 'x' },
      create: () => ({ onResult: () => undefined }),
    });
    await expect(custom({ label: 'y' })).resolves.toMatchObject({ name: 'count', options: { every: 1, label: 'y' } });
    await expect(custom({ evrey: 2 } as never)).rejects.toMatchObject({ name: 'PluginOptionError', option: 'evrey' });
    await expect(custom({ every: 'two' } as never)).rejects.toMatchObject({ name: 'PluginOptionError', option: 'every' });
  });
});
