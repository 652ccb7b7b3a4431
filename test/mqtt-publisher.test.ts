// MQTT publisher against real brokers over real sockets: Mosquitto on 127.0.0.1:1883 and embedded aedes.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/core/log.js';
import { probeMqttBroker, startEmbeddedBroker } from '../src/server/mqtt/embedded-broker.js';
import type { EmbeddedBroker } from '../src/server/mqtt/embedded-broker.js';
import { createMqttPublisher } from '../src/events/mqtt/publisher.js';
import type { MqttEventPublisher } from '../src/events/mqtt/publisher.js';
import type { PublisherOptions } from '../src/events/mqtt/publisher-options.js';
import type { FacesEvent, FacesMessage, StatsMessage } from '../src/contract/face-events.js';
import { freePort } from './helpers/net.js';
import { clearRetained, json, recordTopic, type ReceivedMessage } from './helpers/mqtt.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const publisherModule = pathToFileURL(fileURLToPath(new URL('../src/events/mqtt/publisher.ts', import.meta.url))).href;
const quiet = createLogger('mqtt-test', 'error');
const mosquittoUrl = 'mqtt://127.0.0.1:1883';

// ---------- helpers ----------

function uniqueNames(label: string): { topicPrefix: string; nodeId: string } {
  return { topicPrefix: `kt-test-${randomBytes(3).toString('hex')}`, nodeId: `${label}-${process.pid}-${randomBytes(3).toString('hex')}` };
}

function once<T>(emitter: MqttEventPublisher, event: 'connect' | 'offline', timeoutMs = 5000): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" event within ${timeoutMs} ms`)), timeoutMs);
    emitter.once(event, (arg?: unknown) => {
      clearTimeout(timer);
      resolve(arg as T | undefined);
    });
  });
}

function facesEvent(sequence: number): FacesEvent {
  return {
    sequence,
    captureTimeMs: 1_700_000_000_000 + sequence,
    processedTimeMs: 1_700_000_000_020 + sequence,
    latencyMs: 20,
    faces: [
      {
        box: { x: 10, y: 20, width: 64, height: 64 },
        score: 0.98,
        age: 31.5,
        emotion: { label: 'happy', scores: { happy: 0.9, neutral: 0.1 } },
      },
    ],
  };
}

const facesOf = (messages: ReceivedMessage[]): FacesMessage[] =>
  messages.filter((m) => m.topic.endsWith('/faces')).map((m) => json<FacesMessage>(m));

/**
 * An aedes broker whose CONNECT from `clientId` is held until `open()`: lets a test subscriber get in first,
 * so that what the publisher flushes on reconnect cannot race past the subscription.
 */
async function gatedBroker(port: number, clientId: string): Promise<{ broker: EmbeddedBroker; open(): void }> {
  let isOpen = false;
  const held: (() => void)[] = [];
  const broker = await startEmbeddedBroker({
    port,
    logger: quiet,
    aedes: {
      preConnect: (_client, packet, callback) => {
        if (packet.clientId === clientId && !isOpen) held.push(() => callback(null, true));
        else callback(null, true);
      },
    },
  });
  return {
    broker,
    open() {
      isOpen = true;
      for (const release of held.splice(0)) release();
    },
  };
}

// ---------- the contract, run against every broker ----------

interface BrokerUnderTest {
  name: string;
  setup(): Promise<string>;
  teardown(): Promise<void>;
}

const brokers: BrokerUnderTest[] = [
  {
    name: 'Mosquitto on 127.0.0.1:1883',
    async setup() {
      if (!(await probeMqttBroker('127.0.0.1', 1883, 2000))) {
        throw new Error(
          'Mosquitto is not answering MQTT on 127.0.0.1:1883. These tests need the real broker: start it ' +
            '(`mosquitto -d`, `systemctl start mosquitto`, or the CI service) and run them again.',
        );
      }
      return mosquittoUrl;
    },
    async teardown() {},
  },
  (() => {
    let embedded: EmbeddedBroker | undefined;
    return {
      name: 'embedded aedes on an ephemeral port',
      async setup() {
        embedded = await startEmbeddedBroker({ port: 0, logger: quiet });
        return embedded.url;
      },
      async teardown() {
        await embedded?.close();
      },
    };
  })(),
];

for (const brokerUnderTest of brokers) {
  describe(`MQTT publisher contract: ${brokerUnderTest.name}`, () => {
    let url: string;
    const cleanups: (() => Promise<void>)[] = [];

    beforeAll(async () => {
      url = await brokerUnderTest.setup();
    });
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });
    afterAll(async () => {
      await brokerUnderTest.teardown();
    });

    function publisher(overrides: Partial<PublisherOptions>): MqttEventPublisher {
      const p = createMqttPublisher({ url, reconnectPeriodMs: 100, maxReconnectPeriodMs: 500, ...overrides }, quiet);
      cleanups.push(async () => {
        await p.close();
        await clearRetained(url, p.statusTopic);
      });
      return p;
    }

    it('publishes a retained online status, faces events and periodic stats', async () => {
      const names = uniqueNames('contract');
      const p = publisher({ ...names, statsIntervalMs: 100, statsSource: () => ({ framesPerSecond: 12.5, droppedFrames: 3 }) });
      await p.waitUntilConnected(5000);

      // A subscriber that comes later still sees `online`, retained.
      const sub = await recordTopic(url, `${names.topicPrefix}/${names.nodeId}/#`);
      cleanups.push(() => sub.end());
      await sub.waitFor((ms) => ms.some((m) => m.topic === p.statusTopic), 'the retained status');
      expect(sub.messages.find((m) => m.topic === p.statusTopic)).toEqual({ topic: p.statusTopic, payload: 'online', retain: true });

      p.publishFaces('cam-1', facesEvent(1));
      p.publishFaces('door/left', facesEvent(2));
      await sub.waitFor((ms) => facesOf(ms).length === 2, 'two faces events');
      const faces = sub.messages.filter((m) => m.topic.endsWith('/faces'));
      expect(faces.map((m) => m.topic)).toEqual([
        `${names.topicPrefix}/${names.nodeId}/cam-1/faces`,
        `${names.topicPrefix}/${names.nodeId}/door_left/faces`,
      ]);
      expect(JSON.parse(faces[0]!.payload)).toEqual({ node: names.nodeId, stream: 'cam-1', ...facesEvent(1) });
      expect(JSON.parse(faces[1]!.payload)).toMatchObject({ stream: 'door/left', sequence: 2 });

      await sub.waitFor((ms) => ms.some((m) => m.topic === p.statsTopic), 'a stats message');
      const stats = JSON.parse(sub.messages.find((m) => m.topic === p.statsTopic)!.payload) as StatsMessage;
      expect(stats).toMatchObject({ node: names.nodeId, framesPerSecond: 12.5, droppedFrames: 3, mqtt: { connected: true, discarded: 0 } });
      expect(typeof stats.timeMs).toBe('number');
      expect(p.counters()).toMatchObject({ discarded: 0, queued: 0, reconnects: 0, connected: true });
      // The subscriber may see the stats before the publisher sees their PUBACK.
      expect(p.counters().published + p.counters().inflight).toBeGreaterThanOrEqual(3);

      // close() says goodbye: subscribers see `offline`, and it stays retained.
      await p.close();
      await sub.waitFor((ms) => ms.some((m) => m.topic === p.statusTopic && m.payload === 'offline'), 'offline after close()');
      const later = await recordTopic(url, p.statusTopic);
      cleanups.push(() => later.end());
      const [retained] = await later.waitFor((ms) => ms.length > 0, 'the retained status after close()');
      expect(retained).toEqual({ topic: p.statusTopic, payload: 'offline', retain: true });
    });

    it('leaves a retained offline status (the last will) when the publishing process is killed with SIGKILL', async () => {
      const names = uniqueNames('killed');
      const statusTopic = `${names.topicPrefix}/${names.nodeId}/status`;
      cleanups.push(() => clearRetained(url, statusTopic));
      const child = spawnPublisherProcess(url, names);
      cleanups.push(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      await waitForLine(child, 'ready', 30_000);

      const live = await recordTopic(url, statusTopic);
      cleanups.push(() => live.end());
      await live.waitFor((ms) => ms.some((m) => m.payload === 'online'), 'online from the child process');

      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
      await live.waitFor((ms) => ms.some((m) => m.payload === 'offline'), 'the last will after SIGKILL');

      const fresh = await recordTopic(url, statusTopic);
      cleanups.push(() => fresh.end());
      const [retained] = await fresh.waitFor((ms) => ms.length > 0, 'the retained status after SIGKILL');
      expect(retained).toEqual({ topic: statusTopic, payload: 'offline', retain: true });
    });
  });
}

/** A separate Node process running the publisher, so that it can be killed without a clean disconnect. */
function spawnPublisherProcess(url: string, names: { topicPrefix: string; nodeId: string }): ChildProcess {
  const code = `
    const { createMqttPublisher } = await import(${JSON.stringify(publisherModule)});
    const p = createMqttPublisher({ url: ${JSON.stringify(url)}, topicPrefix: ${JSON.stringify(names.topicPrefix)}, nodeId: ${JSON.stringify(names.nodeId)}, statsIntervalMs: 0 });
    p.on('connect', () => process.stdout.write('ready\\n'));
    setInterval(() => p.publishFaces('cam', { sequence: 0, faces: [] }), 200);
  `;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KT_LOG_LEVEL: 'error' },
  });
}

function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`child did not print "${line}" within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.split('\n').includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.once('exit', (codeOrNull, signal) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${codeOrNull ?? signal}) before printing "${line}"; stderr: ${err}`));
    });
  });
}

// ---------- broker outages (aedes, so that the test can stop and start the broker) ----------

describe('MQTT publisher across broker outages (embedded aedes)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('accepts events while the broker is down at start, keeps the newest in a bounded queue and delivers them in order', async () => {
    const port = await freePort();
    const names = uniqueNames('late-broker');
    const clientId = `kt-test-pub-${randomBytes(4).toString('hex')}`;
    const p = createMqttPublisher(
      {
        url: `mqtt://127.0.0.1:${port}`,
        clientId,
        ...names,
        maxQueuedMessages: 5,
        reconnectPeriodMs: 50,
        maxReconnectPeriodMs: 200,
        reconnectJitter: 0,
        statsIntervalMs: 0,
      },
      quiet,
    );
    cleanups.push(() => p.close());
    const dropped: string[] = [];
    p.on('dropped', (info) => dropped.push(info.topic));
    const errors: Error[] = [];
    p.on('error', (e) => errors.push(e));
    await once(p, 'offline');

    for (let sequence = 0; sequence < 8; sequence++) {
      expect(() => p.publishFaces('cam', facesEvent(sequence))).not.toThrow();
    }
    expect(p.counters()).toMatchObject({ queued: 5, discarded: 3, published: 0, connected: false });
    expect(dropped).toHaveLength(3);
    expect(errors.length).toBeGreaterThan(0); // connection refused, reported as events, never thrown

    const { broker, open } = await gatedBroker(port, clientId);
    cleanups.push(() => broker.close());
    const sub = await recordTopic(broker.url, `${names.topicPrefix}/${names.nodeId}/#`);
    cleanups.push(() => sub.end());
    open();

    await sub.waitFor((ms) => facesOf(ms).length === 5, 'the five queued events');
    expect(facesOf(sub.messages).map((e) => e.sequence)).toEqual([3, 4, 5, 6, 7]);
    expect(sub.messages[0]).toMatchObject({ topic: p.statusTopic, payload: 'online' });
    expect(p.counters()).toMatchObject({ queued: 0, discarded: 3, published: 5, reconnects: 0, connected: true });
  });

  it('queues events while the broker restarts and delivers them after reconnecting, with the status re-published', async () => {
    const names = uniqueNames('restart');
    const clientId = `kt-test-pub-${randomBytes(4).toString('hex')}`;
    const first = await startEmbeddedBroker({ port: 0, logger: quiet });
    const port = first.port; // the second broker takes over this port
    cleanups.push(() => first.close());
    const p = createMqttPublisher(
      { url: first.url, clientId, ...names, reconnectPeriodMs: 50, maxReconnectPeriodMs: 200, statsIntervalMs: 0 },
      quiet,
    );
    cleanups.push(() => p.close());
    p.on('error', () => {});
    await p.waitUntilConnected(5000);
    const before = await recordTopic(first.url, `${names.topicPrefix}/${names.nodeId}/+/faces`);
    cleanups.push(() => before.end());
    p.publishFaces('cam', facesEvent(0));
    p.publishFaces('cam', facesEvent(1));
    await before.waitFor((ms) => ms.length === 2, 'events before the outage');

    const offline = once(p, 'offline');
    await first.close();
    await offline;
    for (let sequence = 2; sequence < 5; sequence++) p.publishFaces('cam', facesEvent(sequence));
    expect(p.counters()).toMatchObject({ queued: 3, connected: false });

    const { broker: second, open } = await gatedBroker(port, clientId);
    cleanups.push(() => second.close());
    const after = await recordTopic(second.url, `${names.topicPrefix}/${names.nodeId}/#`);
    cleanups.push(() => after.end());
    const reconnected = once<{ reconnect: boolean }>(p, 'connect');
    open();
    expect(await reconnected).toEqual({ reconnect: true });

    await after.waitFor((ms) => facesOf(ms).length === 3, 'the events published during the outage');
    expect(after.messages[0]).toMatchObject({ topic: p.statusTopic, payload: 'online' });
    expect(facesOf(after.messages).map((e) => e.sequence)).toEqual([2, 3, 4]);
    expect(facesOf(before.messages).map((e) => e.sequence)).toEqual([0, 1]);
    expect(p.counters()).toMatchObject({ queued: 0, discarded: 0, reconnects: 1, connected: true });
    expect(p.counters().published).toBe(5);
  });

  it('backs off exponentially up to the cap while the broker stays away, and close() still ends the reconnect loop', async () => {
    const port = await freePort();
    const p = createMqttPublisher(
      {
        url: `mqtt://127.0.0.1:${port}`,
        ...uniqueNames('backoff'),
        reconnectPeriodMs: 10,
        reconnectBackoffFactor: 2,
        maxReconnectPeriodMs: 80,
        reconnectJitter: 0,
        statsIntervalMs: 0,
      },
      quiet,
    );
    const delays: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${delays.length} reconnect attempts in 5 s: ${delays.join(', ')}`)), 5000);
      p.on('reconnecting', ({ delayMs }) => {
        delays.push(delayMs);
        if (delays.length === 6) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    // close() cancels the pending reconnect instead of waiting for a broker: it resolves, and the publisher stays down.
    await expect(p.close()).resolves.toBeUndefined();
    expect(p.counters().connected).toBe(false);
    expect(delays).toEqual([10, 20, 40, 80, 80, 80]);
    // Publishing after close is a counted discard, not an exception.
    expect(() => p.publishFaces('cam', facesEvent(0))).not.toThrow();
    expect(p.counters().discarded).toBe(1);
  });
});
