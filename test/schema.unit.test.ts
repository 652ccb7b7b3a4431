// The schema layer (src/core/schema.ts): nearest-name suggestions, every problem named by its field path, defaults,
// and its use by the server config, the client and publisher options and plugin options.
import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/core/errors.js';
import { checkValue, describeSchema, literals, nearestName, parseValue, schemaIssues, schemaProblems } from '../src/core/schema.js';
import { isBrokerUrl, isTopicLevel, isTopicPrefix, topicSafe } from '../src/contract/mqtt-topics.js';
import { resolvePublisherOptions } from '../src/events/mqtt/publisher-options.js';
import { modelManifestSchema } from '../src/models/manifest.js';
import { resolveClientOptions } from '../src/sdk/client-options.js';
import { definePlugin, isPluginOptionError } from '../src/sdk/plugin.js';
import { webhookPlugin } from '../src/sdk/plugin-webhook.js';
import { defaultServerConfig, serverConfigKeys, serverConfigSchema, validateConfigOverlay } from '../src/server/config.js';

describe('nearestName', () => {
  const keys = ['listenAddress', 'maxStreams', 'mqttUrl', 'maxRetries', 'topicPrefix', 'age'];

  it('finds misspellings by edit distance', () => {
    expect(nearestName('listenAdress', keys)).toBe('listenAddress');
    expect(nearestName('maxStream', keys)).toBe('maxStreams');
    expect(nearestName('topicPrefx', keys)).toBe('topicPrefix');
    expect(nearestName('lsitenAddress', keys)).toBe('listenAddress'); // a swap of neighbours is one edit
  });

  it('folds case, dashes and underscores', () => {
    expect(nearestName('mqtt_url', keys)).toBe('mqttUrl');
    expect(nearestName('MAX-STREAMS', keys)).toBe('maxStreams');
  });

  it('suggests the key that contains a shortened name', () => {
    expect(nearestName('retries', keys)).toBe('maxRetries');
  });

  it('stays quiet when nothing is close', () => {
    expect(nearestName('gpu', keys)).toBeUndefined();
    expect(nearestName('fp16', keys)).toBeUndefined();
    expect(nearestName('completelyDifferent', keys)).toBeUndefined();
    expect(nearestName('x', [])).toBeUndefined();
  });
});

describe('schema problems', () => {
  const schema = Type.Object(
    {
      name: Type.String({ minLength: 1 }),
      qos: literals([0, 1, 2] as const, { default: 1 }),
      mode: literals(['fast', 'slow'] as const, { default: 'fast' }),
      retries: Type.Integer({ minimum: 0, maximum: 10, default: 3 }),
      jitter: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.2 }),
      tags: Type.Array(Type.String(), { default: [] }),
      nested: Type.Object({ timeoutMs: Type.Integer({ exclusiveMinimum: 0, default: 100 }) }, { additionalProperties: false, default: {} }),
    },
    { additionalProperties: false },
  );

  it('names every problem with its field path, in one error', () => {
    const value = {
      name: '',
      qos: 5,
      mode: 'turbo',
      retries: 1.5,
      jitter: 1,
      tags: [1],
      nested: { timeoutMs: 0, timeoutMS: 4 },
      nmae: 'x',
    };
    const problems = schemaProblems(schema, value);
    expect(problems).toEqual([
      'unknown key "nmae" (did you mean "name"?)',
      '"name" must be a non-empty string, got ""',
      '"qos" must be 0, 1 or 2, got 5',
      '"mode" must be one of "fast", "slow", got "turbo"',
      '"retries" must be an integer in 0..10, got 1.5',
      '"jitter" must be a number in [0, 1), got 1',
      '"tags" must be an array of strings, got [1]',
      'unknown key "nested.timeoutMS" (did you mean "nested.timeoutMs"?)',
      '"nested.timeoutMs" must be an integer > 0, got 0',
    ]);
    expect(schemaIssues(schema, value).map((i) => i.path)).toEqual([
      'nmae',
      'name',
      'qos',
      'mode',
      'retries',
      'jitter',
      'tags',
      'nested.timeoutMS',
      'nested.timeoutMs',
    ]);
    expect(() => checkValue(schema, value, 'my.yaml')).toThrow(InvalidInputError);
    expect(() => checkValue(schema, value, 'my.yaml')).toThrow(/^my\.yaml: unknown key "nmae" \(did you mean "name"\?\); "name" must be/);
  });

  it('says when a required field is missing and when the value is not an object', () => {
    // With defaults applied only the field without one is missing.
    expect(() => parseValue(schema, {}, 'x.json')).toThrow(/^x\.json: "name" is required \(a non-empty string\)$/);
    expect(schemaProblems(schema, 5)).toEqual(['the value must be an object, got 5']);
  });

  it('applies defaults (nested too) without touching the input', () => {
    const input = { name: 'a' };
    expect(parseValue(schema, input, 'x')).toEqual({
      name: 'a',
      qos: 1,
      mode: 'fast',
      retries: 3,
      jitter: 0.2,
      tags: [],
      nested: { timeoutMs: 100 },
    });
    expect(input).toEqual({ name: 'a' });
  });

  it('walks arrays of objects element by element and picks a tagged union variant', () => {
    const good = {
      name: 'emotion',
      version: 1,
      kind: 'prior',
      tasks: ['emotion'],
      description: '',
      input: {
        name: 'input_1',
        layout: 'NHWC',
        size: 64,
        colorOrder: 'GRAY',
        scale: 1 / 255,
        mean: [0],
        std: [1],
        cropMargin: 0.1,
        cropSquare: true,
      },
      outputs: [{ name: 'out', task: 'emotion', decoding: { type: 'classification', labels: ['a', 'b'], activation: 'softmax' } }],
      sha256: 'a'.repeat(64),
      createdAt: '2026-11-29T00:00:00Z',
    };
    expect(schemaProblems(modelManifestSchema, good)).toEqual([]);
    const bad = {
      ...good,
      outputs: [
        { name: 'out', task: 'emotion', decoding: { type: 'classifcation', labels: [] } },
        { name: 'o2', task: 'age', decoding: { type: 'age-years', scael: 1 } },
      ],
    };
    expect(schemaProblems(modelManifestSchema, bad)).toEqual([
      expect.stringMatching(/^"outputs\[0\]\.decoding\.type" must be one of "blazeface", "classification", .* got "classifcation"$/),
      'unknown key "outputs[1].decoding.scael" (did you mean "outputs[1].decoding.scale"?)',
      '"outputs[1].decoding.scale" is required (a number)',
    ]);
  });

  it('describes types in words', () => {
    expect(describeSchema(Type.Array(literals(['a', 'b']), { minItems: 1 }))).toBe('a non-empty array of "a", "b"');
    expect(describeSchema(Type.Union([Type.Object({}), Type.Literal(false)]))).toBe('an object or false');
    expect(describeSchema(Type.String({ pattern: 'x', mustBe: 'an x' }))).toBe('an x');
    expect(describeSchema(Type.Record(Type.String(), Type.String()))).toBe('an object of strings');
  });
});

describe('server config schema', () => {
  it('documents every field with its default', () => {
    for (const key of serverConfigKeys) {
      const field = serverConfigSchema.properties[key] as { description?: string };
      expect(field.description, key).toMatch(/Default/);
    }
    expect(defaultServerConfig).toMatchObject({
      listenAddress: '127.0.0.1:50051',
      mqttQos: 1,
      executionProviders: ['cpu'],
      taskModels: { age: 'agegender', emotion: 'expression', mesh: 'facemesh' },
    });
  });

  it('lists every bad field of an overlay, unknown keys with the nearest field', () => {
    const bad = { listenAdress: '0.0.0.0:1', mqttQos: 5, maxStreams: 0, taskModels: { agee: 'x' }, mqttTopicPrefix: 'kt/#' };
    const message = (() => {
      try {
        validateConfigOverlay(bad, 'bad.yaml');
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(message).toContain('bad.yaml: unknown key "listenAdress" (did you mean "listenAddress"?)');
    expect(message).toContain('unknown key "taskModels.agee" (did you mean "taskModels.age"?)');
    expect(message).toContain('"mqttQos" must be 0, 1 or 2, got 5');
    expect(message).toContain('"maxStreams" must be an integer in 1..10000, got 0');
    expect(message).toContain('"mqttTopicPrefix" must be a topic prefix without +, # or a leading/trailing "/", got "kt/#"');
  });
});

describe('options of the client, the MQTT publisher and plugins', () => {
  it('client options: unknown nested key with a suggestion, bad values by path', () => {
    expect(() => resolveClientOptions({ keepalive: { timeMss: 1 } } as never)).toThrow(
      'unknown client option "keepalive.timeMss" (did you mean "keepalive.timeMs"?)',
    );
    expect(() => resolveClientOptions({ reconnect: { jitter: 1 }, deadlineMs: 0 })).toThrow(
      'client option "deadlineMs" must be an integer > 0, got 0; client option "reconnect.jitter" must be a number in [0, 1), got 1',
    );
    expect(resolveClientOptions({ tls: { rootCerts: new Uint8Array(1) } }).tls).toEqual({ rootCerts: new Uint8Array(1) });
  });

  it('publisher options: every problem at once', () => {
    expect(() => resolvePublisherOptions({ qos: 3 as 0, url: 'http://x', retryMs: 1 } as never)).toThrow(
      /^unknown MQTT publisher option "retryMs"; MQTT publisher option "url" must be an mqtt:\/\/.*; MQTT publisher option "qos" must be 0, 1 or 2, got 3$/,
    );
    expect(resolvePublisherOptions({ nodeId: 'edge-1' }).nodeId).toBe('edge-1');
  });

  it('plugin options: PluginOptionError names the option and suggests the nearest', () => {
    let err: unknown;
    try {
      webhookPlugin.resolveOptions({ url: 'http://h/', retries: 2 } as never);
    } catch (e) {
      err = e;
    }
    expect(isPluginOptionError(err)).toBe(true);
    expect(err).toMatchObject({
      plugin: 'webhook',
      option: 'retries',
      message: 'plugin webhook: unknown option "retries" (did you mean "maxRetries"?)',
    });
    expect(webhookPlugin.defaults).toMatchObject({ method: 'POST', maxRetries: 3, timeoutMs: 5000 });

    const withSchema = definePlugin({
      name: 'typed',
      description: 'a plugin declared with a schema',
      schema: Type.Object({ every: Type.Integer({ minimum: 1, default: 1 }) }, { additionalProperties: false }),
      create: () => ({ onResult: () => undefined }),
    });
    expect(withSchema.resolveOptions({})).toEqual({ every: 1 });
    expect(() => withSchema.resolveOptions({ evrey: 2 } as never)).toThrow('plugin typed: unknown option "evrey" (did you mean "every"?)');
  });
});

describe('MQTT topic rules', () => {
  it('checks prefixes, levels and broker URLs, and makes levels safe', () => {
    expect([
      isTopicPrefix('kt'),
      isTopicPrefix('site/kt'),
      isTopicPrefix('/kt'),
      isTopicPrefix('kt/'),
      isTopicPrefix('kt/#'),
      isTopicPrefix(''),
    ]).toEqual([true, true, false, false, false, false]);
    expect([isTopicLevel('edge-1'), isTopicLevel('a b'), isTopicLevel('a/b'), isTopicLevel('')]).toEqual([true, false, false, false]);
    expect([isBrokerUrl('mqtt://h:1883'), isBrokerUrl('wss://h'), isBrokerUrl('http://h')]).toEqual([true, true, false]);
    expect(topicSafe('cam 1/#')).toBe('cam_1__');
  });
});
