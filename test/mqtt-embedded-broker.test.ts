// Embedded aedes broker and broker resolution (configured URL, a running local broker, or embedded), over real sockets.
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { connect } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { KtError } from '../src/core/errors.js';
import { createLogger } from '../src/core/log.js';
import { probeMqttBroker, resolveBroker, startEmbeddedBroker } from '../src/server/mqtt/embedded-broker.js';
import { freePort } from './helpers/net.js';

const quiet = createLogger('mqtt-broker-test', 'error');

/** A TCP server that is not MQTT: it either answers with HTTP or says nothing at all. */
async function notMqttServer(behaviour: 'http' | 'silent'): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    if (behaviour === 'http') socket.on('data', () => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('embedded broker and broker resolution', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('starts aedes on an ephemeral port, relays messages, and shuts down cleanly', async () => {
    const broker = await startEmbeddedBroker({ port: 0, logger: quiet });
    cleanups.push(() => broker.close());
    expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.port}`);
    expect(await probeMqttBroker('127.0.0.1', broker.port)).toBe(true);

    const client = connect(broker.url, { reconnectPeriod: 0 });
    cleanups.push(() => client.endAsync(true));
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    await client.subscribeAsync('kt-broker-test/echo');
    const received = new Promise<string>((resolve) => client.once('message', (_t, payload) => resolve(payload.toString())));
    await client.publishAsync('kt-broker-test/echo', 'hello');
    expect(await received).toBe('hello');

    const disconnected = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await broker.close();
    await disconnected; // the broker going away is visible to its clients
    await broker.close(); // idempotent
    expect(await probeMqttBroker('127.0.0.1', broker.port)).toBe(false);
  });

  it('reports a taken port as UNAVAILABLE', async () => {
    const first = await startEmbeddedBroker({ port: 0, logger: quiet });
    cleanups.push(() => first.close());
    const attempt = startEmbeddedBroker({ port: first.port, logger: quiet });
    await expect(attempt).rejects.toBeInstanceOf(KtError);
    await expect(attempt).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('probes: true for a broker, false for nothing, for HTTP and for a silent server', async () => {
    const nothing = await freePort();
    expect(await probeMqttBroker('127.0.0.1', nothing)).toBe(false);
    const http = await notMqttServer('http');
    cleanups.push(() => http.close());
    expect(await probeMqttBroker('127.0.0.1', http.port)).toBe(false);
    const silent = await notMqttServer('silent');
    cleanups.push(() => silent.close());
    // A server that accepts and never answers: the probe gives up after its own timeout and says no.
    expect(await probeMqttBroker('127.0.0.1', silent.port, 300)).toBe(false);
  });

  it('uses a configured URL as is', async () => {
    const resolved = await resolveBroker({ url: 'mqtt://127.0.0.1:1', logger: quiet });
    expect(resolved).toMatchObject({ url: 'mqtt://127.0.0.1:1', source: 'configured' });
    expect(resolved.embedded).toBeUndefined();
    await resolved.close();
  });

  it('uses the broker already answering on 127.0.0.1:1883 (Mosquitto)', async () => {
    if (!(await probeMqttBroker('127.0.0.1', 1883, 2000))) {
      throw new Error('Mosquitto is not answering MQTT on 127.0.0.1:1883; start it (`mosquitto -d` or the CI service) and run again.');
    }
    const resolved = await resolveBroker({ logger: quiet });
    expect(resolved).toMatchObject({ url: 'mqtt://127.0.0.1:1883', source: 'local' });
    await resolved.close();
  });

  it('starts the embedded broker when nothing answers, and only then', async () => {
    const port = await freePort();
    const lines: string[] = [];
    const logger = {
      ...quiet,
      info: (fields: string | object, msg?: string) => lines.push(typeof fields === 'string' ? fields : `${msg} ${JSON.stringify(fields)}`),
    };
    const resolved = await resolveBroker({ probePort: port, logger });
    cleanups.push(() => resolved.close());
    expect(resolved).toMatchObject({ url: `mqtt://127.0.0.1:${port}`, source: 'embedded' });
    expect(resolved.embedded?.port).toBe(port);
    expect(lines.join('\n')).toMatch(/started the embedded aedes broker/);
    expect(lines.join('\n')).toContain(`"url":"mqtt://127.0.0.1:${port}"`);
    expect(await probeMqttBroker('127.0.0.1', port)).toBe(true);

    // A second resolution now finds the embedded broker running.
    const again = await resolveBroker({ probePort: port, logger: quiet });
    expect(again.source).toBe('local');
  });

  it('does not mistake a non-MQTT service for a broker', async () => {
    const http = await notMqttServer('http');
    cleanups.push(() => http.close());
    const embeddedPort = await freePort();
    const resolved = await resolveBroker({ probePort: http.port, embeddedPort, logger: quiet });
    cleanups.push(() => resolved.close());
    expect(resolved).toMatchObject({ source: 'embedded', url: `mqtt://127.0.0.1:${embeddedPort}` });
  });
});
