// MQTT broker credentials and TLS: from config or KT_MQTT_* env, passed to the broker, never in the log; the broker
// connection shows in /metrics and /health/ready.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes } from 'aedes';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeCerts } from '../src/cli-certs.js';
import { createLogger } from '../src/core/log.js';
import { InvalidInputError } from '../src/core/errors.js';
import { brokerCredentials } from '../src/server/mqtt/broker-credentials.js';
import { probeMqttBroker, startEmbeddedBroker, type EmbeddedBroker } from '../src/server/mqtt/embedded-broker.js';
import type { RunningServer } from '../src/server/server.js';
import { startTestServer } from './helpers/server-fixture.js';

const envPassword = 'env-Secret-7f3a9c';
const configPassword = 'config-Secret-c0ffee';

let server: RunningServer | undefined;
let broker: EmbeddedBroker | undefined;

afterEach(async () => {
  await server?.close();
  await broker?.close();
  server = undefined;
  broker = undefined;
});

/** A logger writing JSON lines into `lines`, at debug so every MQTT line is there. */
function capturingLogger(lines: string[]) {
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return createLogger('serve', { level: 'debug', pretty: false, destination });
}

const metricsText = async (s: RunningServer): Promise<string> => (await fetch(`http://${s.metricsAddress}/metrics`)).text();

describe('MQTT broker credentials', () => {
  it('passes the env user name and password (over the config one) to the broker and never logs the password', async () => {
    const seen: { username: string | undefined; password: string | undefined }[] = [];
    broker = await startEmbeddedBroker({
      port: 0,
      aedes: {
        authenticate: (_client, username, password, done) => {
          seen.push({ username, password: password?.toString() });
          done(null, username === 'kt-node' && password?.toString() === envPassword);
        },
      },
      logger: createLogger('broker', 'silent'),
    });
    const lines: string[] = [];
    server = await startTestServer(
      {
        tasks: ['emotion'],
        mqttEnabled: true,
        // The URL's own password must not leak either.
        mqttUrl: `mqtt://url-user:url-Secret-123@127.0.0.1:${broker.port}`,
        mqttUsername: 'config-user',
        mqttPassword: configPassword,
        metricsAddress: '127.0.0.1:0',
      },
      { logger: capturingLogger(lines), env: { KT_MQTT_USERNAME: 'kt-node', KT_MQTT_PASSWORD: envPassword } },
    );
    const s = server;
    await vi.waitFor(async () => expect(await metricsText(s)).toMatch(/^kt_mqtt_connected 1$/m), { timeout: 10_000, interval: 100 });
    expect(seen[0]).toEqual({ username: 'kt-node', password: envPassword });
    const ready = (await (await fetch(`http://${s.metricsAddress}/health/ready`)).json()) as Record<string, unknown>;
    expect(ready).toMatchObject({ status: 'SERVING', mqttConnected: true });
    await server.close();
    server = undefined;
    const log = lines.join('\n');
    expect(log).toMatch(/MQTT events to the configured broker/);
    expect(log).toMatch(/"usernameSet":true,"passwordSet":true/);
    for (const secret of [envPassword, configPassword, 'url-Secret-123']) expect(log).not.toContain(secret);
  });

  it('works with Mosquitto on 127.0.0.1:1883 given credentials it does not need', async () => {
    if (!(await probeMqttBroker('127.0.0.1', 1883, 2000))) throw new Error('Mosquitto is not answering on 127.0.0.1:1883');
    const lines: string[] = [];
    server = await startTestServer(
      {
        tasks: ['emotion'],
        mqttEnabled: true,
        mqttUrl: 'mqtt://127.0.0.1:1883',
        mqttUsername: 'kt-mosquitto',
        mqttPassword: configPassword,
        metricsAddress: '127.0.0.1:0',
      },
      { logger: capturingLogger(lines) },
    );
    const s = server;
    await vi.waitFor(async () => expect(await metricsText(s)).toMatch(/^kt_mqtt_connected 1$/m), { timeout: 10_000, interval: 100 });
    expect(await metricsText(s)).toMatch(/^kt_mqtt_queue_depth 0$/m);
    expect(lines.join('\n')).not.toContain(configPassword);
  });

  it('metrics say 0 while the broker is away', async () => {
    broker = await startEmbeddedBroker({ port: 0, logger: createLogger('broker', 'silent') });
    const port = broker.port;
    await broker.close();
    broker = undefined;
    server = await startTestServer({
      tasks: ['emotion'],
      mqttEnabled: true,
      mqttUrl: `mqtt://127.0.0.1:${port}`,
      metricsAddress: '127.0.0.1:0',
    });
    const s = server;
    expect(await metricsText(s)).toMatch(/^kt_mqtt_connected 0$/m);
    const ready = (await (await fetch(`http://${s.metricsAddress}/health/ready`)).json()) as Record<string, unknown>;
    // Serving does not depend on the broker: events wait in the queue.
    expect(ready).toMatchObject({ status: 'SERVING', mqttConnected: false });
  });

  it('connects to an mqtts:// broker that requires a client certificate, with mqttCaFile, mqttCertFile and mqttKeyFile', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kt-mqtt-tls-'));
    const certs = await makeCerts({ outDir: dir, clientName: 'kt-node' });
    const aedes = await Aedes.createBroker();
    const peers: string[] = [];
    const tlsServer = createTlsServer(
      {
        cert: await readFile(certs.serverCert),
        key: await readFile(certs.serverKey),
        ca: await readFile(certs.caCert),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        peers.push(String(socket.getPeerCertificate().subject?.CN));
        aedes.handle(socket);
      },
    );
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    const port = (tlsServer.address() as { port: number }).port;
    try {
      server = await startTestServer({
        tasks: ['emotion'],
        mqttEnabled: true,
        mqttUrl: `mqtts://127.0.0.1:${port}`,
        mqttCaFile: certs.caCert,
        mqttCertFile: certs.clientCert,
        mqttKeyFile: certs.clientKey,
        metricsAddress: '127.0.0.1:0',
      });
      const s = server;
      await vi.waitFor(async () => expect(await metricsText(s)).toMatch(/^kt_mqtt_connected 1$/m), { timeout: 10_000, interval: 100 });
      expect(peers).toContain('kt-node');
    } finally {
      await server?.close();
      server = undefined;
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects a client certificate without its key, and names an unreadable file', () => {
    const base = { mqttUsername: '', mqttPassword: '', mqttCaFile: '', mqttCertFile: '', mqttKeyFile: '' };
    expect(() => brokerCredentials({ ...base, mqttCertFile: '/nonexistent/client.pem' }, {})).toThrow(/go together/);
    expect(() => brokerCredentials({ ...base, mqttCaFile: '/nonexistent/ca.pem' }, {})).toThrow(InvalidInputError);
    expect(brokerCredentials({ ...base, mqttPassword: 'p' }, { KT_MQTT_PASSWORD: 'q' })).toEqual({ password: 'q' });
  });
});
