// `kt certs`: a self-signed CA plus server and client certificates for a LAN (openssl CLI), and the config that uses them.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse, type RegisterCommand } from './core/cli-args.js';
import { InvalidInputError, UnavailableError, errorMessage } from './core/errors.js';

const run = promisify(execFile);

const help = `kt certs [options]
  Makes a self-signed CA and, signed by it, a server certificate (for the names and addresses the server is reached by)
  and a client certificate, as PEM files; prints the server config and the client options that use them.
  Existing files are kept (a second run with another --client-name adds a client of the same CA) unless --force.
  Needs the openssl command.

  --out DIR              folder for the PEM files (default ./kt-certs)
  --host a,b,...         extra DNS names / IP addresses of the server (localhost, 127.0.0.1, the host name and
                         the LAN IPv4 addresses are always included)
  --client-name NAME     common name and file name of the client certificate (default client)
  --days N               validity of the server and client certificates in days (default 825; the CA: 3650)
  --force                overwrite existing files (a new CA invalidates every certificate it signed)
  --help                 print this help
`;

export interface MakeCertsOptions {
  /** Folder for the files; created when missing. */
  outDir: string;
  /** Extra subjectAltNames (DNS names or IP addresses) of the server certificate. */
  hosts?: readonly string[];
  /** CN and file name of the client certificate. Default `client`. */
  clientName?: string;
  /** Validity of the leaf certificates in days. Default 825. */
  days?: number;
  /** Overwrite existing files. Default false. */
  force?: boolean;
}

export interface MadeCerts {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Files written by this run (the others existed and were kept). */
  written: string[];
  /** The server certificate's subjectAltNames. */
  serverNames: string[];
}

const ipPattern = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:]*)$/;

/** localhost, loopback, the host name, every non-internal IPv4 address and the extra hosts, without duplicates. */
function serverNamesOf(extra: readonly string[]): string[] {
  const lan = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);
  return [...new Set(['localhost', '127.0.0.1', '::1', hostname(), ...lan, ...extra].filter(Boolean))];
}

function opensslConfig(serverNames: readonly string[]): string {
  const san = serverNames.map((n) => (ipPattern.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  return [
    '[req]',
    'distinguished_name = dn',
    '[dn]',
    '[ca_ext]',
    'basicConstraints = critical,CA:TRUE,pathlen:0',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
    '[server_ext]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = serverAuth',
    `subjectAltName = ${san}`,
    'authorityKeyIdentifier = keyid',
    '[client_ext]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = clientAuth',
    'authorityKeyIdentifier = keyid',
    '',
  ].join('\n');
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    if ((e as { code?: unknown }).code === 'ENOENT') throw new UnavailableError('kt certs needs the openssl command (not found on PATH)');
    throw new UnavailableError(`openssl ${args[0]} failed: ${stderr || errorMessage(e)}`);
  }
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A leaf key + certificate signed by the CA, with the extensions of `section`. */
async function issue(
  work: string,
  conf: string,
  f: MadeCerts,
  leaf: { cert: string; key: string; cn: string; section: string; days: number },
) {
  const csr = join(work, `${leaf.section}.csr`);
  await openssl(['req', '-new', '-config', conf, ...ecKey, '-keyout', leaf.key, '-out', csr, '-subj', `/CN=${leaf.cn}`]);
  const serial = `0x${randomBytes(16).toString('hex')}`;
  await openssl([
    'x509', '-req', '-in', csr, '-CA', f.caCert, '-CAkey', f.caKey, '-set_serial', serial, '-days', String(leaf.days),
    '-sha256', '-extfile', conf, '-extensions', leaf.section, '-out', leaf.cert,
  ]); // prettier-ignore
  await chmod(leaf.key, 0o600);
}

/** Writes the missing files (all with `force`); the CA is reused when present so new clients join the same trust. */
export async function makeCerts(options: MakeCertsOptions): Promise<MadeCerts> {
  const dir = resolve(options.outDir);
  const clientName = options.clientName ?? 'client';
  if (!/^[A-Za-z0-9._-]+$/.test(clientName))
    throw new InvalidInputError(`--client-name must be letters, digits, ".", "_" or "-", got "${clientName}"`);
  const days = options.days ?? 825;
  const serverNames = serverNamesOf(options.hosts ?? []);
  const f: MadeCerts = {
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, `${clientName}.pem`),
    clientKey: join(dir, `${clientName}.key`),
    written: [],
    serverNames,
  };
  const missing = (...files: string[]): boolean => options.force === true || files.some((file) => !existsSync(file));
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'kt-certs-'));
  try {
    const conf = join(work, 'openssl.cnf');
    await writeFile(conf, opensslConfig(serverNames));
    const newCa = missing(f.caCert, f.caKey);
    if (newCa) {
      const caArgs = ['-x509', '-new', '-config', conf, '-extensions', 'ca_ext', ...ecKey, '-sha256', '-days', '3650'];
      await openssl(['req', ...caArgs, '-keyout', f.caKey, '-out', f.caCert, '-subj', `/CN=kt LAN CA ${hostname()}`]);
      await chmod(f.caKey, 0o600);
      f.written.push(f.caCert, f.caKey);
    }
    if (newCa || missing(f.serverCert, f.serverKey)) {
      await issue(work, conf, f, { cert: f.serverCert, key: f.serverKey, cn: hostname(), section: 'server_ext', days });
      f.written.push(f.serverCert, f.serverKey);
    }
    if (newCa || missing(f.clientCert, f.clientKey)) {
      await issue(work, conf, f, { cert: f.clientCert, key: f.clientKey, cn: clientName, section: 'client_ext', days });
      f.written.push(f.clientCert, f.clientKey);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return f;
}

/** What to put in the server config and in a client, printed after the files are made. */
export function certsUsage(f: MadeCerts): string {
  return `# kt serve --config FILE (YAML): TLS, and mutual TLS: only clients with a certificate of this CA connect
listenAddress: 0.0.0.0:50051
tlsCertFile: ${f.serverCert}
tlsKeyFile: ${f.serverKey}
tlsClientCaFile: ${f.caCert}
# tokenFile: tokens.yaml   # optional on top of mTLS: roles analyze / admin

# SDK (copy ${f.caCert}, ${f.clientCert} and ${f.clientKey} to the client):
#   new FaceAnalysisClient('<server>:50051', { tls: { rootCerts: readFileSync('ca.pem'),
#     certChain: readFileSync('${f.clientCert.split('/').at(-1)}'), privateKey: readFileSync('${f.clientKey.split('/').at(-1)}') } })
# kt analyze photo.jpg --server <server>:50051 --ca ca.pem --cert ${f.clientCert.split('/').at(-1)} --key ${f.clientKey.split('/').at(-1)}
# The server certificate is valid for: ${f.serverNames.join(', ')}
`;
}

export function registerCertsCommand(register: RegisterCommand): void {
  register('certs', 'make a self-signed CA and server/client certificates for TLS and mTLS on a LAN', async (argv) => {
    const { values } = parse(argv, {
      out: { type: 'string', default: 'kt-certs' },
      host: { type: 'string' },
      'client-name': { type: 'string', default: 'client' },
      days: { type: 'string', default: '825' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    });
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    const days = Number(values.days);
    if (!Number.isInteger(days) || days < 1) throw new InvalidInputError(`--days expects a positive integer, got "${values.days}"`);
    const made = await makeCerts({
      outDir: values.out,
      hosts: (values.host ?? '').split(',').filter(Boolean),
      clientName: values['client-name'],
      days,
      force: values.force,
    });
    for (const file of made.written) process.stderr.write(`wrote ${file}\n`);
    if (made.written.length === 0) process.stderr.write(`kept the existing files in ${resolve(values.out)} (--force overwrites)\n`);
    process.stdout.write(certsUsage(made));
    return 0;
  });
}
