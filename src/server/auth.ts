// Who may call what: the role each method needs, the one server interceptor that checks it on every call (unary and
// streams), and the start-up rule that plain, unauthenticated serving is for loopback only.
import { ServerInterceptingCall, status as GrpcStatus, type Metadata, type ServerInterceptor } from '@grpc/grpc-js';
import { InvalidInputError } from '../core/errors.js';
import type { Logger } from '../core/log-types.js';
import type { TokenStore, RoleName } from './auth-tokens.js';
import { splitListenAddress, type ServerConfig } from './config.js';

/** `open`: no token needed (health, so that orchestrators can probe). Methods not listed need `admin`. */
export type MethodAccess = RoleName | 'open';

/** The role each method needs. Reads of models need `analyze`; the gallery listing and every write need `admin`. */
export const methodAccess: Readonly<Record<string, MethodAccess>> = Object.freeze({
  '/kt.v1.FaceAnalysis/Analyze': 'analyze',
  '/kt.v1.FaceAnalysis/StreamAnalyze': 'analyze',
  '/kt.v1.Models/ListModels': 'analyze',
  '/kt.v1.Models/DescribeModel': 'analyze',
  '/kt.v1.Models/LoadModel': 'admin',
  '/kt.v1.Models/UnloadModel': 'admin',
  '/kt.v1.Models/ReloadModel': 'admin',
  '/kt.v1.Gallery/Identify': 'analyze',
  // Lists every enrolled identity: gallery management, not analysis.
  '/kt.v1.Gallery/ListPeople': 'admin',
  '/kt.v1.Gallery/Enrol': 'admin',
  '/kt.v1.Gallery/DeletePerson': 'admin',
  '/grpc.health.v1.Health/Check': 'open',
  '/grpc.health.v1.Health/Watch': 'open',
});

/** What a path needs: the table, then reflection (`analyze`: it describes the API), else `admin` (a safe default for new methods). */
export function accessOf(path: string): MethodAccess {
  const listed = methodAccess[path];
  if (listed !== undefined) return listed;
  return path.startsWith('/grpc.reflection.') ? 'analyze' : 'admin';
}

/** How calls are authenticated, decided once at start. */
export type AuthMode =
  /** Tokens configured: every call but health carries a valid one with the role it needs. */
  | { kind: 'tokens'; tokens: TokenStore }
  /** No tokens, mutual TLS: the TLS handshake already proved the client; every role. */
  | { kind: 'mtls' }
  /** No tokens on a loopback listener, allowed by `allowUnauthenticated`. */
  | { kind: 'open' };

export interface AuthDecision {
  code: GrpcStatus;
  details: string;
  /** Who was refused (the token's name), for the log; never the token. */
  who?: string;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * The auth mode for a config, or a clear InvalidInputError when the server must not start: no tokens and no mTLS on a
 * non-loopback address, or no tokens with `allowUnauthenticated: false`.
 */
export function authModeOf(cfg: ServerConfig, tokens: TokenStore): AuthMode {
  if (tokens.size > 0) return { kind: 'tokens', tokens };
  if (cfg.tlsClientCaFile !== '') return { kind: 'mtls' };
  const { host } = splitListenAddress(cfg.listenAddress);
  if (!isLoopbackHost(host)) {
    throw new InvalidInputError(
      `refusing to listen on ${cfg.listenAddress} without authentication: configure tokens (tokenFile, $KT_TOKEN_FILE or $KT_TOKENS; ` +
        'TLS recommended, `kt certs` makes certificates) or mutual TLS (tlsClientCaFile), or listen on 127.0.0.1',
    );
  }
  if (!cfg.allowUnauthenticated) {
    throw new InvalidInputError('allowUnauthenticated is false but no token is configured (tokenFile, $KT_TOKEN_FILE or $KT_TOKENS)');
  }
  return { kind: 'open' };
}

const bearerPattern = /^Bearer\s+(\S+)\s*$/i;

/** The one per-call check: undefined lets the call through, else the status that refuses it. */
export function checkCall(mode: AuthMode, path: string, metadata: Metadata): AuthDecision | undefined {
  if (mode.kind !== 'tokens') return undefined;
  const access = accessOf(path);
  if (access === 'open') return undefined;
  const header = metadata.get('authorization')[0];
  const token = typeof header === 'string' ? bearerPattern.exec(header)?.[1] : undefined;
  if (token === undefined) {
    return { code: GrpcStatus.UNAUTHENTICATED, details: 'missing bearer token: send metadata "authorization: Bearer <token>"' };
  }
  const entry = mode.tokens.match(token);
  if (entry === undefined) return { code: GrpcStatus.UNAUTHENTICATED, details: 'unknown bearer token' };
  if (access === 'admin' && entry.role !== 'admin') {
    return { code: GrpcStatus.PERMISSION_DENIED, details: `${path} needs the admin role; this token has ${entry.role}`, who: entry.name };
  }
  return undefined;
}

/** The server interceptor: checks the call's metadata before any handler runs, and answers refusals itself. */
export function authInterceptor(mode: AuthMode, log: Logger): ServerInterceptor {
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, passOn) => {
            const refusal = checkCall(mode, method.path, metadata);
            if (refusal === undefined) {
              passOn(metadata);
              return;
            }
            log.debug({ method: method.path, peer: call.getPeer(), code: GrpcStatus[refusal.code], who: refusal.who }, 'call refused');
            call.sendStatus({ code: refusal.code, details: refusal.details });
          },
        }),
    });
}
