// gRPC server credentials from the config: plain text, TLS, or mutual TLS from PEM files that are reloaded when they change.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ServerCredentials, experimental } from '@grpc/grpc-js';
import { InvalidInputError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log-types.js';
import type { ServerConfig } from './config.js';

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

interface PemSet {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
}

/** Reads the PEM files and checks that Node's TLS accepts them together (key matches cert, parsable CA). */
function readPemSet(cfg: ServerConfig): PemSet {
  const read = (field: 'tlsCertFile' | 'tlsKeyFile' | 'tlsClientCaFile'): Buffer => {
    try {
      return readFileSync(cfg[field]);
    } catch (e) {
      throw new InvalidInputError(`${field} ${cfg[field]}: ${errorMessage(e)}`);
    }
  };
  const set: PemSet = {
    cert: read('tlsCertFile'),
    key: read('tlsKeyFile'),
    ca: cfg.tlsClientCaFile !== '' ? read('tlsClientCaFile') : undefined,
  };
  try {
    createSecureContext({ cert: set.cert, key: set.key, ...(set.ca ? { ca: set.ca } : {}) });
  } catch (e) {
    throw new InvalidInputError(
      `TLS files ${cfg.tlsCertFile} / ${cfg.tlsKeyFile}${set.ca ? ` / ${cfg.tlsClientCaFile}` : ''}: ${errorMessage(e)}`,
    );
  }
  return set;
}

/**
 * A grpc-js CertificateProvider over the configured files. Unlike grpc-js's FileWatcherCertificateProvider, a file
 * that is missing or invalid after a change keeps the last good set serving (and is logged) instead of refusing
 * every new connection, and a broken set at start fails the start with a message naming the files.
 */
class PemFileCertificateProvider implements experimental.CertificateProvider {
  private current: PemSet;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly files: string[];
  private readonly onChange = (): void => this.reload();

  constructor(
    private readonly cfg: ServerConfig,
    private readonly log: Logger,
  ) {
    this.current = readPemSet(cfg);
    this.files = [cfg.tlsCertFile, cfg.tlsKeyFile, cfg.tlsClientCaFile].filter((f) => f !== '');
    // Polling (stat) rather than fs.watch: it survives editors and cert tools that replace a file by renaming.
    for (const file of this.files) watchFile(file, { interval: cfg.tlsReloadIntervalMs, persistent: false }, this.onChange);
  }

  private reload(): void {
    try {
      this.current = readPemSet(this.cfg);
    } catch (e) {
      this.log.error({ error: errorMessage(e) }, 'TLS files changed but are not usable; still serving the previous certificates');
      return;
    }
    this.log.info({ cert: this.cfg.tlsCertFile }, 'TLS certificates reloaded; new connections use them');
    for (const listener of this.caListeners) this.tellCa(listener);
    for (const listener of this.identityListeners) this.tellIdentity(listener);
  }

  private tellCa(listener: CaListener): void {
    listener(this.current.ca ? { caCertificate: this.current.ca } : null);
  }

  private tellIdentity(listener: IdentityListener): void {
    listener({ certificate: this.current.cert, privateKey: this.current.key });
  }

  // grpc-js registers its listener before it registers the server's watcher; a synchronous answer would be lost, so
  // the first answer comes on the next microtask (connections that arrive before it are refused by grpc-js).
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => this.caListeners.has(listener) && this.tellCa(listener));
  }
  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => this.identityListeners.has(listener) && this.tellIdentity(listener));
  }
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  close(): void {
    for (const file of this.files) unwatchFile(file, this.onChange);
  }
}

export interface GrpcServerCredentials {
  readonly credentials: ServerCredentials;
  /** 'plaintext', 'tls' or 'mtls', for the log. */
  readonly mode: 'plaintext' | 'tls' | 'mtls';
  /** Stops watching the files. */
  close(): void;
}

/** Plain text without tlsCertFile; TLS with it; mutual TLS (client certificate required) with tlsClientCaFile too. */
export function grpcServerCredentials(cfg: ServerConfig, log: Logger): GrpcServerCredentials {
  if (cfg.tlsCertFile === '') return { credentials: ServerCredentials.createInsecure(), mode: 'plaintext', close: () => undefined };
  const provider = new PemFileCertificateProvider(cfg, log);
  const mutual = cfg.tlsClientCaFile !== '';
  // grpc-js 1.14 passes its first argument as the identity provider and the second (nullable) as the CA provider,
  // whatever the parameter names in its typings say; one provider serves both, so the order cannot go wrong.
  const credentials = experimental.createCertificateProviderServerCredentials(provider, mutual ? provider : null, mutual);
  return { credentials, mode: mutual ? 'mtls' : 'tls', close: () => provider.close() };
}
