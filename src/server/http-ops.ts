// The operations HTTP listener: Prometheus /metrics, and /health/live and /health/ready for systemd, Docker and Kubernetes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { UnavailableError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log-types.js';
import { splitListenAddress } from './config.js';
import type { ServerMetrics } from './metrics.js';

export interface OpsHttpOptions {
  /** host:port; port 0 picks a free one. */
  address: string;
  metrics: ServerMetrics;
  /** Whether gRPC health says SERVING (models warm, not shutting down): /health/ready answers 200, else 503. */
  ready(): boolean;
  /** Extra facts for /health/ready's JSON body (the MQTT broker connection, ...). */
  details?(): Record<string, unknown>;
  logger: Logger;
}

export interface OpsHttpServer {
  /** `host:port` actually bound. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

type Route = (res: ServerResponse) => Promise<void> | void;

/** Starts the listener; UNAVAILABLE when the address cannot be bound. */
export async function startOpsHttp(options: OpsHttpOptions): Promise<OpsHttpServer> {
  const routes: Record<string, Route> = {
    '/metrics': async (res) => send(res, 200, options.metrics.contentType, await options.metrics.text()),
    // Live while the process answers at all: a supervisor restarts it only when it hangs or died.
    '/health/live': (res) => sendJson(res, 200, { status: 'live' }),
    '/health/ready': (res) => {
      const ready = options.ready();
      sendJson(res, ready ? 200 : 503, { status: ready ? 'SERVING' : 'NOT_SERVING', ...options.details?.() });
    },
  };
  const server = createServer((req, res) => void handle(routes, req, res, options.logger));
  const { host, port } = splitListenAddress(options.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new UnavailableError(`cannot listen on ${options.address} for metrics: ${errorMessage(e)}`)));
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  const boundPort = typeof bound === 'object' && bound !== null ? bound.port : port;
  const address = `${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  options.logger.info({ address, paths: Object.keys(routes) }, 'metrics and HTTP health listening');
  return { address, port: boundPort, close: () => closeServer(server) };
}

async function handle(routes: Record<string, Route>, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!;
  const route = routes[path];
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET and HEAD\n');
  if (!route) return send(res, 404, 'text/plain', `not found; try ${Object.keys(routes).join(', ')}\n`);
  try {
    await route(res);
  } catch (e) {
    log.warn({ path, error: errorMessage(e) }, 'ops HTTP request failed');
    if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', `${JSON.stringify(body)}\n`);
}

/** Stops listening and ends idle keep-alive connections, so close() does not wait for a scraper's socket. */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
