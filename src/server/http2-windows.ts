// HTTP/2 receive windows for the gRPC listener. grpc-js has no server option for them, and Node's defaults (65,535 B per
// call and per connection) let a client send one 64 KiB slice per server event-loop turn: with several camera streams
// on one connection the frames then wait in the client (bench/stream-sharing.ts measures it). The per-call window goes
// into the SETTINGS that grpc-js passes to http2.createServer; the connection window is set on each new session.
import type { Server } from '@grpc/grpc-js';
import type { Http2Server, Http2Session, Settings } from 'node:http2';
import { FailedPreconditionError } from '../core/errors.js';

export interface Http2Windows {
  /** SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on one call before the server reads it. */
  streamWindowBytes: number;
  /** The connection-level window shared by the connection's calls. */
  connectionWindowBytes: number;
}

/** The grpc-js 1.x internals this module relies on (checked at run time: a changed grpc-js fails loudly, not silently). */
interface GrpcServerInternals {
  commonServerOptions?: { settings?: Settings };
  http2Servers?: Map<Http2Server, { sessions?: Set<Http2Session> }>;
}

const internals = (server: Server): GrpcServerInternals => server as unknown as GrpcServerInternals;

/** Before bindAsync: the per-call window goes into the SETTINGS frame of every connection. */
export function setStreamWindow(server: Server, windows: Http2Windows): void {
  const options = internals(server).commonServerOptions;
  if (!options) throw new FailedPreconditionError('grpc-js changed: Server.commonServerOptions is gone; HTTP/2 windows cannot be set');
  options.settings = { ...options.settings, initialWindowSize: windows.streamWindowBytes };
}

/** After bindAsync: every session (present and future) gets the connection window. */
export function setConnectionWindow(server: Server, windows: Http2Windows): void {
  const servers = internals(server).http2Servers;
  if (!servers) throw new FailedPreconditionError('grpc-js changed: Server.http2Servers is gone; HTTP/2 windows cannot be set');
  const widen = (session: Http2Session): void => {
    try {
      session.setLocalWindowSize(windows.connectionWindowBytes);
    } catch {
      // A session that is already closing has no window to widen.
    }
  };
  for (const [http2Server, entry] of servers) {
    http2Server.on('session', widen);
    for (const session of entry.sessions ?? []) widen(session);
  }
}
