// Broker resolution for `kt serve`: a configured URL, else a broker already answering on 127.0.0.1:1883,
// else an embedded aedes broker started in-process.
import { createServer, connect as tcpConnect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Aedes } from 'aedes';
import type { AedesOptions } from 'aedes';
import { UnavailableError, errorMessage } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import type { Logger } from '../../core/log.js';

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 picks a free one. Default 1883. */
  port?: number;
  /** Interface to listen on. Default `127.0.0.1`: an unauthenticated broker is not exposed to the network
   *  unless asked for (`0.0.0.0` lets other hosts, e.g. Home Assistant, subscribe). */
  host?: string;
  /** Passed to aedes (authentication hooks, limits). Default none. */
  aedes?: AedesOptions;
  logger?: Logger;
}

export interface EmbeddedBroker {
  readonly broker: Aedes;
  readonly host: string;
  readonly port: number;
  /** `mqtt://<host>:<port>`, with `127.0.0.1` when listening on every interface. */
  readonly url: string;
  /** Disconnects every client (they see the broker go away) and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** Starts aedes on a TCP port (`net.createServer(aedes.handle)`). Rejects with UNAVAILABLE when the port is taken. */
export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const requestedPort = options.port ?? 1883;
  const log = options.logger ?? createLogger('mqtt-broker');
  const broker = await Aedes.createBroker(options.aedes ?? {});
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  // A client that vanishes mid-packet must not take the broker down.
  broker.on('clientError', (client, error) => log.debug({ client: client.id, error: errorMessage(error) }, 'client error'));
  broker.on('connectionError', (_client, error) => log.debug({ error: errorMessage(error) }, 'connection error'));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(requestedPort, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw new UnavailableError(`cannot start the embedded MQTT broker on ${host}:${requestedPort}: ${errorMessage(e)}`, { cause: e });
  }
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : requestedPort;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    broker,
    host,
    port,
    url: `mqtt://${urlHost}:${port}`,
    close() {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        // aedes closes its clients; sockets still in the CONNECT handshake are ours to end.
        for (const socket of sockets) socket.destroy();
        await serverClosed;
      })();
      return closing;
    },
  };
}

/**
 * Whether an MQTT broker answers at host:port: opens TCP, sends an MQTT 3.1.1 CONNECT and waits for a CONNACK
 * (any return code: a broker that refuses us is still a broker). Never throws.
 */
export function probeMqttBroker(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const socket = tcpConnect({ host, port });
    const finish = (answer: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (answer)
        socket.end(Buffer.from([0xe0, 0x00])); // DISCONNECT, so no will and no error in the broker log
      else socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    let received = Buffer.alloc(0);
    socket.on('connect', () => socket.write(connectPacket(`kt-probe-${randomBytes(4).toString('hex')}`)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4) finish(received[0] === 0x20 && received[1] === 0x02);
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

/** MQTT 3.1.1 CONNECT: clean session, keepalive 10 s, no will, no credentials. */
function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId, 'utf8');
  const variableHeader = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x0a]);
  const payload = Buffer.concat([Buffer.from([id.length >> 8, id.length & 0xff]), id]);
  const remainingLength = variableHeader.length + payload.length; // < 128, so one length byte
  return Buffer.concat([Buffer.from([0x10, remainingLength]), variableHeader, payload]);
}

export interface ResolveBrokerOptions {
  /** A broker URL from the config; when set it is used as is, without probing. Default none. */
  url?: string;
  /** Where to look for a running broker. Default `127.0.0.1`. */
  probeHost?: string;
  /** Default 1883. */
  probePort?: number;
  /** Default 500 ms. */
  probeTimeoutMs?: number;
  /** Port of the embedded broker when one is started. Default: `probePort`. */
  embeddedPort?: number;
  /** Interface of the embedded broker. Default `127.0.0.1`. */
  embeddedHost?: string;
  logger?: Logger;
}

export interface ResolvedBroker {
  url: string;
  /** `configured`: from the config; `local`: a broker already running; `embedded`: started here. */
  source: 'configured' | 'local' | 'embedded';
  /** The broker started here, when `source` is `embedded`. */
  embedded?: EmbeddedBroker;
  /** Stops the embedded broker, if any; a no-op otherwise. */
  close(): Promise<void>;
}

export async function resolveBroker(options: ResolveBrokerOptions = {}): Promise<ResolvedBroker> {
  const log = options.logger ?? createLogger('mqtt-broker');
  const noop = async (): Promise<void> => {};
  if (options.url !== undefined && options.url !== '') {
    return { url: options.url, source: 'configured', close: noop };
  }
  const probeHost = options.probeHost ?? '127.0.0.1';
  const probePort = options.probePort ?? 1883;
  if (await probeMqttBroker(probeHost, probePort, options.probeTimeoutMs ?? 500)) {
    const url = `mqtt://${probeHost.includes(':') ? `[${probeHost}]` : probeHost}:${probePort}`;
    log.info({ url }, 'using the MQTT broker already running locally');
    return { url, source: 'local', close: noop };
  }
  const embedded = await startEmbeddedBroker({
    port: options.embeddedPort ?? probePort,
    host: options.embeddedHost ?? '127.0.0.1',
    logger: log,
  });
  log.info(
    { probed: `${probeHost}:${probePort}`, url: embedded.url },
    'no MQTT broker configured or answering; started the embedded aedes broker',
  );
  return { url: embedded.url, source: 'embedded', embedded, close: () => embedded.close() };
}
