// Built-in plugin `mqtt-forward`: republishes results as faces events on <topicPrefix>/<node>/<stream>/faces through
// an MQTT event publisher (bounded queue, reconnect with backoff) that the entry point injects.
import { KtError } from '../core/errors.js';
import { definePlugin, optionChecks } from './plugin.js';
import type { PluginFactory } from './plugin.js';
import { resultToFacesEvent } from './results.js';
import type { FacesEventJson } from './results.js';

/** A faces event without `node` and `stream` (the publisher adds both). */
export type FacesEventBody = Omit<FacesEventJson, 'node' | 'stream'>;

/**
 * What the plugin needs from an MQTT publisher. The server's MqttEventPublisher (src/server/mqtt) has this shape;
 * the SDK does not import the server, so the entry point passes a factory (see registerBuiltinPlugins).
 */
export interface FacesEventPublisher {
  publishFaces(streamId: string, event: FacesEventBody): void;
  facesTopic(streamId: string): string;
  waitUntilConnected(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Options the plugin hands to the publisher factory (a subset of the server's PublisherOptions). */
export interface FacesEventPublisherInit {
  url: string;
  topicPrefix: string;
  nodeId?: string;
  qos: 0 | 1 | 2;
  maxQueuedMessages: number;
}

export type FacesEventPublisherFactory = (init: FacesEventPublisherInit) => FacesEventPublisher;

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

/** Makes the `mqtt-forward` factory around a publisher factory (the server's createMqttPublisher, or a fake in tests). */
export function createMqttForwardPlugin(createPublisher: FacesEventPublisherFactory): PluginFactory<MqttForwardOptions> {
  return definePlugin<MqttForwardOptions>({
    name: 'mqtt-forward',
    description: 'republish results as faces events to an MQTT topic',
    defaults: {
      url: 'mqtt://127.0.0.1:1883',
      topicPrefix: 'kt-gateway',
      nodeId: '',
      qos: 1,
      maxQueuedMessages: 1000,
      onlyWithFaces: true,
      connectTimeoutMs: 0,
    },
    schema: {
      url: optionChecks.url(['mqtt', 'mqtts', 'ws', 'wss', 'tcp', 'ssl']),
      topicPrefix: (v) => (typeof v === 'string' && v.length > 0 && !/[+#\u0000]/.test(v) && !v.startsWith('/') && !v.endsWith('/') ? undefined : 'a topic prefix without +, # or a leading/trailing "/"'),
      nodeId: (v) => (typeof v === 'string' && !/[/+#\u0000\s]/.test(v) ? undefined : 'one topic level without / + # or spaces (empty: the host name)'),
      qos: optionChecks.oneOf([0, 1, 2]),
      maxQueuedMessages: optionChecks.int(0, 1_000_000),
      onlyWithFaces: optionChecks.boolean(),
      connectTimeoutMs: optionChecks.int(0, 600_000),
    },
    create({ options: o, log }) {
      let publisher: FacesEventPublisher | undefined;
      let forwarded = 0;
      const open = (): FacesEventPublisher => {
        publisher ??= createPublisher({
          url: o.url,
          topicPrefix: o.topicPrefix,
          ...(o.nodeId !== '' ? { nodeId: o.nodeId } : {}),
          qos: o.qos as 0 | 1 | 2,
          maxQueuedMessages: o.maxQueuedMessages,
        });
        return publisher;
      };
      return {
        async onStart() {
          const p = open();
          if (o.connectTimeoutMs > 0) await p.waitUntilConnected(o.connectTimeoutMs);
          log.info(`forwarding faces events to ${o.url} ${p.facesTopic('<stream>')}`);
        },
        onResult(result, ctx) {
          if (o.onlyWithFaces && result.faces.length === 0) return;
          const { node: _node, stream: _stream, ...body } = resultToFacesEvent(result, ctx.streamId);
          // Publishing never blocks: the publisher sends, queues (bounded) or counts a discard.
          open().publishFaces(ctx.streamId, body);
          forwarded += 1;
        },
        async onStop() {
          if (!publisher) return;
          const p = publisher;
          publisher = undefined;
          await p.close().catch((e: unknown) => {
            throw new KtError('UNAVAILABLE', `mqtt-forward: closing the publisher: ${e instanceof Error ? e.message : String(e)}`);
          });
        },
        stats: () => ({ forwarded }),
      };
    },
  });
}
