// MQTT event publisher: retained online/offline status with a last will, faces events and periodic stats,
// a bounded drop-oldest outbound queue while the broker is away, and reconnects with capped exponential backoff.
import { EventEmitter } from 'node:events';
import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { backoffDelayMs } from '../../core/backoff.js';
import { UnavailableError, errorMessage } from '../../core/errors.js';
import { createBasicLogger, type Logger } from '../../core/log-types.js';
import { BoundedQueue } from './bounded-queue.js';
import { resolvePublisherOptions, topicSafe } from './publisher-options.js';
import type { MqttQos, PublisherOptions, StatsSnapshot } from './publisher-options.js';
import type { FacesEvent, FacesMessage, PublisherCounters, StatsMessage } from '../../contract/face-events.js';
import { streamTopic } from '../../contract/mqtt-topics.js';
import type { TrackEventMessage } from '../../contract/track-events.js';

export interface PublisherEvents {
  /** Connected (again); `online` has just been published. */
  connect: [info: { reconnect: boolean }];
  /** The broker went away (or the first attempt failed); messages now wait in the queue. */
  offline: [];
  /** A reconnect attempt is scheduled after `delayMs`. */
  reconnecting: [info: { attempt: number; delayMs: number }];
  /** Connection or publish errors. Without a listener they are logged, never thrown. */
  error: [error: Error];
  /** The queue was full and its oldest message was discarded (`discarded` is the running total). */
  dropped: [info: { topic: string; discarded: number }];
}

type State = 'connecting' | 'connected' | 'waiting' | 'closing' | 'closed';

interface OutboundMessage {
  topic: string;
  /** JSON text, or bytes (snapshots). */
  payload: string | Buffer;
  qos: MqttQos;
  retain: boolean;
}

export class MqttEventPublisher extends EventEmitter<PublisherEvents> {
  readonly options: Readonly<PublisherOptions>;
  /** `<prefix>/<node>/status` and `<prefix>/<node>/stats`. */
  readonly statusTopic: string;
  readonly statsTopic: string;

  private readonly log: Logger;
  private readonly client: MqttClient;
  private readonly queue: BoundedQueue<OutboundMessage>;
  private state: State = 'connecting';
  private announcedOffline = false;
  private everConnected = false;
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private pumping = false;
  private drainWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private readonly count = { published: 0, discarded: 0, failed: 0, reconnects: 0, inflight: 0 };

  constructor(overrides: Partial<PublisherOptions> = {}, logger: Logger = createBasicLogger('mqtt')) {
    super();
    this.options = Object.freeze(resolvePublisherOptions(overrides));
    this.log = logger;
    const base = `${this.options.topicPrefix}/${this.options.nodeId}`;
    this.statusTopic = `${base}/status`;
    this.statsTopic = `${base}/stats`;
    this.queue = new BoundedQueue<OutboundMessage>(this.options.maxQueuedMessages);

    const o = this.options;
    const clientOptions: IClientOptions = {
      clientId: o.clientId,
      clean: true,
      keepalive: o.keepaliveSeconds,
      connectTimeout: o.connectTimeoutMs,
      // Reconnects are ours (with backoff); mqtt.js only retries at a fixed period.
      reconnectPeriod: 0,
      // mqtt.js's offline queue cannot be bounded, so nothing is handed to it while disconnected.
      queueQoSZero: false,
      resubscribe: false,
      will: { topic: this.statusTopic, payload: Buffer.from('offline'), qos: o.statusQos, retain: o.retainStatus },
    };
    if (o.username !== undefined) clientOptions.username = o.username;
    if (o.password !== undefined) clientOptions.password = o.password;
    // TLS material for mqtts:// and wss:// (mqtt.js hands it to tls.connect).
    if (o.ca !== undefined) clientOptions.ca = Buffer.from(o.ca);
    if (o.cert !== undefined) clientOptions.cert = Buffer.from(o.cert);
    if (o.key !== undefined) clientOptions.key = Buffer.from(o.key);
    // mqtt.js lets user:password in the URL win over the options; explicit options should win, so the URL's go.
    const explicit = o.username !== undefined || o.password !== undefined;
    this.client = connect(explicit ? withoutUserInfo(o.url) : o.url, clientOptions);
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => this.onClose());
    this.client.on('error', (e) => this.reportError(e, 'connection'));

    if (o.statsSource !== undefined && o.statsIntervalMs > 0) {
      const source = o.statsSource;
      this.statsTimer = setInterval(() => {
        let snapshot: StatsSnapshot;
        try {
          snapshot = source();
        } catch (e) {
          this.reportError(e, 'stats source');
          return;
        }
        this.publishStats(snapshot);
      }, o.statsIntervalMs);
    }
  }

  /** Whether the client is connected to the broker now. */
  get connected(): boolean {
    return this.state === 'connected' && this.client.connected;
  }

  /** `<prefix>/<node>/<stream>/faces`; characters that would change the topic's meaning become `_`. */
  facesTopic(streamId: string): string {
    return `${this.options.topicPrefix}/${this.options.nodeId}/${topicSafe(streamId)}/faces`;
  }

  /** One JSON event per analysed frame. Never blocks and never throws: sends, queues or counts a discard. */
  publishFaces(streamId: string, event: FacesEvent): void {
    const message: FacesMessage = { node: this.options.nodeId, stream: streamId, ...event };
    this.submit(this.facesTopic(streamId), message, this.options.retainFaces);
  }

  /** `<prefix>/<node>/<stream>/events`: face track events. */
  eventsTopic(streamId: string): string {
    return streamTopic(this.options.topicPrefix, this.options.nodeId, streamId, 'events');
  }

  /** One track event (new / update / end; the node is filled in). Not retained: events are transitions. Never throws. */
  publishTrackEvent(streamId: string, event: TrackEventMessage): void {
    const node = this.options.nodeId;
    const message: TrackEventMessage = {
      ...event,
      ...(event.before ? { before: { ...event.before, node } } : {}),
      after: { ...event.after, node },
    };
    this.submit(this.eventsTopic(streamId), message, false);
  }

  /** `<prefix>/<node>/<stream>/snapshot`: the best face of the stream's latest track event, as JPEG. */
  snapshotTopic(streamId: string): string {
    return streamTopic(this.options.topicPrefix, this.options.nodeId, streamId, 'snapshot');
  }

  /** A best-face JPEG, retained (latest per stream: what a Home Assistant camera entity shows). Never throws. */
  publishSnapshot(streamId: string, jpeg: Uint8Array): void {
    const payload = Buffer.isBuffer(jpeg) ? jpeg : Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
    this.enqueue({ topic: this.snapshotTopic(streamId), payload, qos: this.options.qos, retain: true });
  }

  /** Any JSON message (Home Assistant discovery and states). Never blocks and never throws. */
  publishJson(topic: string, message: object, retain: boolean): void {
    this.submit(topic, message, retain);
  }

  /**
   * Subscribes to one exact topic (no wildcards) now and after every reconnect (sessions are clean); `handler` gets each
   * message on it (Home Assistant's birth message).
   */
  subscribe(topic: string, handler: (topic: string, payload: Buffer) => void): void {
    const subscribeNow = (): void => {
      this.client.subscribe(topic, { qos: 1 }, (err) => {
        if (err) this.reportError(err, `subscribing to ${topic}`);
      });
    };
    this.on('connect', subscribeNow);
    if (this.connected) subscribeNow();
    this.client.on('message', (received, payload) => {
      if (received === topic) handler(received, payload);
    });
  }

  /** Publishes `stats` with the publisher's own counters under `mqtt`. Never blocks and never throws. */
  publishStats(stats: StatsSnapshot = {}): void {
    const message: StatsMessage = { node: this.options.nodeId, timeMs: Date.now(), ...stats, mqtt: this.counters() };
    this.submit(this.statsTopic, message, this.options.retainStats);
  }

  counters(): PublisherCounters {
    return {
      published: this.count.published,
      queued: this.queue.length,
      inflight: this.count.inflight,
      discarded: this.count.discarded,
      failed: this.count.failed,
      reconnects: this.count.reconnects,
      connected: this.connected,
    };
  }

  /** Promise twin of the `connect` event: resolves when connected, rejects with UNAVAILABLE after `timeoutMs`. */
  waitUntilConnected(timeoutMs: number = this.options.connectTimeoutMs): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onConnect = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('connect', onConnect);
        reject(new UnavailableError(`MQTT broker ${this.options.url} not reached within ${timeoutMs} ms`));
      }, timeoutMs);
      this.once('connect', onConnect);
    });
  }

  /**
   * Sends what is queued (for up to `closeTimeoutMs`), publishes `offline` (retained), disconnects cleanly.
   * Messages still queued after that are counted as discarded. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.statsTimer);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const wasConnected = this.connected;
    this.state = 'closing';
    const deadline = Date.now() + this.options.closeTimeoutMs;
    if (wasConnected) {
      await withTimeout(this.drained(), remaining(deadline));
      if (this.client.connected) {
        const offline = new Promise<void>((resolve) => {
          this.client.publish(this.statusTopic, 'offline', { qos: this.options.statusQos, retain: this.options.retainStatus }, () =>
            resolve(),
          );
        });
        await withTimeout(offline, remaining(deadline));
      }
    }
    const ended = await withTimeout(
      new Promise<boolean>((resolve) => this.client.end(!this.client.connected, {}, () => resolve(true))),
      Math.max(remaining(deadline), 200),
    );
    if (ended !== true) await new Promise<void>((resolve) => this.client.end(true, {}, () => resolve()));
    if (this.queue.length > 0) {
      this.log.warn({ url: this.options.url, undelivered: this.queue.length }, 'closed with undelivered messages');
      this.count.discarded += this.queue.length;
      this.queue.clear();
    }
    this.state = 'closed';
    this.resolveDrainWaiters();
  }

  private submit(topic: string, message: object, retain: boolean): void {
    let payload: string;
    try {
      payload = JSON.stringify(message);
    } catch (e) {
      this.count.discarded += 1;
      this.reportError(e, `serialising a message for ${topic}`);
      return;
    }
    this.enqueue({ topic, payload, qos: this.options.qos, retain });
  }

  /** Sends at once when possible, else queues (drop-oldest when full). */
  private enqueue(outbound: OutboundMessage): void {
    if (this.state === 'closed') {
      this.count.discarded += 1;
      return;
    }
    if (this.queue.length === 0 && this.canSend()) {
      this.send(outbound);
      return;
    }
    const evicted = this.queue.push(outbound);
    if (evicted !== undefined) {
      this.count.discarded += 1;
      if (this.listenerCount('dropped') > 0) this.emit('dropped', { topic: evicted.topic, discarded: this.count.discarded });
    }
    this.pump();
  }

  private canSend(): boolean {
    return (
      (this.state === 'connected' || this.state === 'closing') &&
      this.client.connected &&
      this.count.inflight < this.options.maxInflightMessages
    );
  }

  private send(message: OutboundMessage): void {
    this.count.inflight += 1;
    const done = (err?: Error): void => {
      this.count.inflight -= 1;
      if (err) {
        this.count.failed += 1;
        this.reportError(err, `publishing to ${message.topic}`);
      } else {
        this.count.published += 1;
      }
      this.pump();
    };
    try {
      this.client.publish(message.topic, message.payload, { qos: message.qos, retain: message.retain }, (err) => done(err));
    } catch (e) {
      done(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Moves queued messages to the client in order, as far as the in-flight bound allows. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && this.canSend()) {
        const next = this.queue.shift();
        if (next !== undefined) this.send(next);
      }
    } finally {
      this.pumping = false;
    }
    if (this.queue.length === 0 && this.count.inflight === 0) this.resolveDrainWaiters();
  }

  private drained(): Promise<void> {
    if (this.queue.length === 0 && this.count.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private resolveDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private onConnect(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'connected';
    this.announcedOffline = false;
    this.reconnectAttempt = 0;
    const reconnect = this.everConnected;
    if (reconnect) this.count.reconnects += 1;
    this.everConnected = true;
    this.log.info(
      { url: this.options.url, clientId: this.options.clientId },
      reconnect ? 'reconnected to the broker' : 'connected to the broker',
    );
    // Status first, so that a subscriber sees `online` before the backlog.
    this.client.publish(this.statusTopic, 'online', { qos: this.options.statusQos, retain: this.options.retainStatus }, (err) => {
      if (err) this.reportError(err, 'publishing status');
    });
    this.emit('connect', { reconnect });
    this.pump();
  }

  private onClose(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'waiting';
    if (!this.announcedOffline) {
      this.announcedOffline = true;
      this.log.warn({ url: this.options.url, maxQueuedMessages: this.options.maxQueuedMessages }, 'broker unavailable; queueing events');
      this.emit('offline');
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== undefined) return;
    const o = this.options;
    const policy = {
      initialMs: o.reconnectPeriodMs,
      maxMs: o.maxReconnectPeriodMs,
      multiplier: o.reconnectBackoffFactor,
      jitter: o.reconnectJitter,
    };
    const delayMs = backoffDelayMs(policy, this.reconnectAttempt);
    this.reconnectAttempt += 1;
    this.emit('reconnecting', { attempt: this.reconnectAttempt, delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state !== 'waiting') return;
      this.state = 'connecting';
      try {
        this.client.connect();
      } catch (e) {
        this.reportError(e, 'reconnecting');
        this.state = 'waiting';
        this.scheduleReconnect();
      }
    }, delayMs);
  }

  private reportError(e: unknown, context: string): void {
    const error = e instanceof Error ? e : new Error(String(e));
    if (this.listenerCount('error') > 0) {
      this.emit('error', error);
    } else if (this.state === 'connected') {
      this.log.warn({ url: this.options.url, context, error: errorMessage(error) }, 'MQTT error');
    } else {
      // Refused connections repeat on every attempt while the broker is away; `offline` was already logged.
      this.log.debug({ url: this.options.url, context, error: errorMessage(error) }, 'MQTT error');
    }
  }
}

/** Creates a publisher that starts connecting at once; publishing is possible immediately. */
function withoutUserInfo(url: string): string {
  const parsed = new URL(url);
  if (parsed.username === '' && parsed.password === '') return url;
  parsed.username = '';
  parsed.password = '';
  return parsed.toString();
}

export function createMqttPublisher(options: Partial<PublisherOptions> = {}, logger?: Logger): MqttEventPublisher {
  return new MqttEventPublisher(options, logger);
}

function remaining(deadline: number): number {
  return Math.max(0, deadline - Date.now());
}

/** Resolves with the promise's value, or with `undefined` after `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
