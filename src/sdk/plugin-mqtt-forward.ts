// Built-in plugin `mqtt-forward`: republishes results as the contract's faces events on <topicPrefix>/<node>/<stream>/faces
// through its own MQTT event publisher (src/events/mqtt: bounded queue, reconnect with backoff).
import { UnavailableError } from '../core/errors.js';
import { redactSecrets } from '../core/log-types.js';
import type { MqttQos } from '../contract/wire-names.js';
import type { MqttEventPublisher } from '../events/mqtt/publisher.js';
import type * as PublisherModule from '../events/mqtt/publisher.js';
import { brokerUrlSchema, nodeIdOrHostSchema, qosSchema, topicPrefixSchema } from '../contract/mqtt-topics.js';
import { Type, definePlugin, type TSchema } from './plugin.js';
import type { PluginFactory } from './plugin.js';
import { facesEventOfResult } from './results.js';

export interface MqttForwardOptions {
  /** Broker URL. Default `mqtt://127.0.0.1:1883`. */
  url: string;
  /** First topic level(s): events go to `<topicPrefix>/<nodeId>/<stream>/faces`. Default `kt-gateway`. */
  topicPrefix: string;
  /** Second topic level. Default "": the host name. */
  nodeId: string;
  /** QoS of the events. Default 1. */
  qos: number;
  /** Events kept while the broker is away; the oldest is discarded when full. Default 1000. */
  maxQueuedMessages: number;
  /** Forward only results with at least one face. Default true. */
  onlyWithFaces: boolean;
  /** Wait this long in onStart for the broker (0: do not wait; events queue meanwhile), in milliseconds. Default 0. */
  connectTimeoutMs: number;
}

/** The `mqtt-forward` plugin factory. */
export const mqttForwardPlugin: PluginFactory<MqttForwardOptions> = definePlugin<MqttForwardOptions>({
  name: 'mqtt-forward',
  description: 'republish results as faces events to an MQTT topic',
  schema: Type.Object(
    {
      url: brokerUrlSchema({ default: 'mqtt://127.0.0.1:1883', description: 'Broker URL. Default `mqtt://127.0.0.1:1883`.' }),
      topicPrefix: topicPrefixSchema({
        default: 'kt-gateway',
        description: 'First topic level(s): events go to `<topicPrefix>/<nodeId>/<stream>/faces`. Default `kt-gateway`.',
      }),
      nodeId: nodeIdOrHostSchema({ default: '', description: 'Second topic level. Default "": the host name.' }),
      qos: qosSchema({ default: 1, description: 'QoS of the events. Default 1.' }),
      maxQueuedMessages: Type.Integer({
        minimum: 0,
        maximum: 1_000_000,
        default: 1000,
        description: 'Events kept while the broker is away; the oldest is discarded when full. Default 1000.',
      }),
      onlyWithFaces: Type.Boolean({ default: true, description: 'Forward only results with at least one face. Default true.' }),
      connectTimeoutMs: Type.Integer({
        minimum: 0,
        maximum: 600_000,
        default: 0,
        description: 'Wait this long in onStart for the broker (0: do not wait; events queue meanwhile), in milliseconds. Default 0.',
      }),
    } satisfies Record<keyof MqttForwardOptions, TSchema>,
    { additionalProperties: false, title: 'mqtt-forward plugin options' },
  ),
  create({ options: o, log }) {
    let publisher: MqttEventPublisher | undefined;
    let opening: Promise<MqttEventPublisher> | undefined;
    let forwarded = 0;
    // mqtt is an optional peer of the SDK package: load the publisher (and with it mqtt) only when this plugin runs.
    const open = (): Promise<MqttEventPublisher> =>
      (opening ??= loadPublisherModule().then(({ createMqttPublisher }) => {
        const init = {
          url: o.url,
          topicPrefix: o.topicPrefix,
          qos: o.qos as MqttQos,
          maxQueuedMessages: o.maxQueuedMessages,
          statsIntervalMs: 0,
        };
        publisher = createMqttPublisher({ ...init, ...(o.nodeId !== '' ? { nodeId: o.nodeId } : {}) }, log);
        return publisher;
      }));
    return {
      async onStart() {
        const p = await open();
        if (o.connectTimeoutMs > 0) await p.waitUntilConnected(o.connectTimeoutMs);
        log.info({ url: o.url, topic: p.facesTopic('<stream>') }, 'forwarding faces events');
      },
      onResult(result, ctx) {
        if (o.onlyWithFaces && result.faces.length === 0) return;
        // Publishing never blocks: the publisher sends, queues (bounded) or counts a discard.
        const event = facesEventOfResult(result);
        forwarded += 1;
        if (publisher) publisher.publishFaces(ctx.streamId, event);
        else
          open().then(
            (p) => p.publishFaces(ctx.streamId, event),
            (e: unknown) => log.error({ error: String(e) }, 'mqtt-forward: no publisher'),
          );
      },
      async onStop() {
        if (!opening) return;
        const p = await opening;
        publisher = undefined;
        opening = undefined;
        await p.close().catch((e: unknown) => {
          throw new UnavailableError(`mqtt-forward: closing the publisher: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        });
      },
      stats: () => ({ forwarded }),
      health: () =>
        publisher === undefined
          ? { state: 'starting' }
          : publisher.connected
            ? { state: 'online', counters: { forwarded } }
            : { state: 'offline', reason: `broker ${redactSecrets(o.url)} not connected`, counters: { forwarded } },
    };
  },
});

/** Loads the MQTT publisher; a missing optional peer `mqtt` becomes an error that says how to add it. */
async function loadPublisherModule(): Promise<typeof PublisherModule> {
  try {
    return await import('../events/mqtt/publisher.js');
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes("'mqtt'")) {
      throw new UnavailableError('mqtt-forward needs the optional peer dependency mqtt: npm install mqtt', { cause: e });
    }
    throw e;
  }
}
