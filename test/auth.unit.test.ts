// The auth rules without sockets: token parsing and hashing, the per-method role table, the per-call check, the start-up rule.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/core/errors.js';
import { accessOf, authModeOf, checkCall, isLoopbackHost, type AuthMode } from '../src/server/auth.js';
import { TokenStore, envTokenEntries, loadTokens, tokenEntriesOf } from '../src/server/auth-tokens.js';
import { resolveClientOptions } from '../src/sdk/client-options.js';
import { resolveServerConfig } from '../src/server/config.js';

const adminToken = 'admin-token-0123456789abcdef';
const analyzeToken = 'analyze-token-0123456789abcdef';
const tokens = new TokenStore(envTokenEntries(`admin:${adminToken},analyze:${analyzeToken}`));
const mode: AuthMode = { kind: 'tokens', tokens };

function withAuth(value?: string): Metadata {
  const m = new Metadata();
  if (value !== undefined) m.set('authorization', value);
  return m;
}

describe('tokens', () => {
  it('are kept as SHA-256 digests and matched by role', () => {
    expect(tokens.size).toBe(2);
    expect(tokens.match(adminToken)?.role).toBe('admin');
    expect(tokens.match(analyzeToken)?.role).toBe('analyze');
    expect(tokens.match('nope-nope-nope-nope')).toBeUndefined();
    expect(JSON.stringify(tokens.entries)).not.toContain(adminToken);
  });

  it('a token file may give a token in clear or as its sha256', () => {
    const sha = createHash('sha256').update(analyzeToken).digest('hex');
    const store = new TokenStore(
      tokenEntriesOf(
        {
          tokens: [
            { name: 'door', role: 'analyze', sha256: sha },
            { role: 'admin', token: adminToken },
          ],
        },
        'tokens.yaml',
      ),
    );
    expect(store.match(analyzeToken)).toMatchObject({ name: 'door', role: 'analyze' });
    expect(store.match(adminToken)?.role).toBe('admin');
  });

  it('rejects short tokens, unknown roles and entries with both or neither of token and sha256', () => {
    expect(() => envTokenEntries('admin:short')).toThrow(/at least 16 characters/);
    expect(() => envTokenEntries(`root:${adminToken}`)).toThrow(InvalidInputError);
    expect(() => tokenEntriesOf({ tokens: [{ role: 'admin' }] }, 'f.json')).toThrow(/exactly one of "token" and "sha256"/);
    expect(() => tokenEntriesOf({ tokens: [{ role: 'owner', token: adminToken }] }, 'f.json')).toThrow(/f\.json/);
  });
});

describe('token sources', () => {
  it('a YAML token file (config tokenFile, else $KT_TOKEN_FILE) plus $KT_TOKENS', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kt-tokens-'));
    try {
      const file = join(dir, 'tokens.yaml');
      const sha = createHash('sha256').update(adminToken).digest('hex');
      await writeFile(file, `tokens:\n  - name: ops\n    role: admin\n    sha256: ${sha}\n`);
      const fromConfig = await loadTokens(file, { KT_TOKENS: `analyze:${analyzeToken}` });
      expect(fromConfig.size).toBe(2);
      expect(fromConfig.match(adminToken)).toMatchObject({ name: 'ops', role: 'admin' });
      expect((await loadTokens('', { KT_TOKEN_FILE: file })).match(adminToken)?.role).toBe('admin');
      expect((await loadTokens('', {})).size).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the SDK option `token` must be printable ASCII without spaces', () => {
    expect(resolveClientOptions({ token: analyzeToken }).token).toBe(analyzeToken);
    expect(resolveClientOptions().token).toBeUndefined();
    expect(() => resolveClientOptions({ token: 'two words' })).toThrow(/token/);
  });
});

describe('the per-call check', () => {
  it('health is open; reads need analyze; model and gallery writes and the gallery listing need admin', () => {
    expect(accessOf('/grpc.health.v1.Health/Check')).toBe('open');
    expect(accessOf('/kt.v1.FaceAnalysis/StreamAnalyze')).toBe('analyze');
    expect(accessOf('/kt.v1.Models/ListModels')).toBe('analyze');
    expect(accessOf('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo')).toBe('analyze');
    for (const path of ['LoadModel', 'UnloadModel', 'ReloadModel'].map((m) => `/kt.v1.Models/${m}`)) expect(accessOf(path)).toBe('admin');
    for (const path of ['Enrol', 'DeletePerson', 'ListPeople'].map((m) => `/kt.v1.Gallery/${m}`)) expect(accessOf(path)).toBe('admin');
    expect(accessOf('/kt.v1.Future/Method')).toBe('admin');
  });

  it('missing or wrong token: UNAUTHENTICATED; analyze token on a write: PERMISSION_DENIED; right role: through', () => {
    const unload = '/kt.v1.Models/UnloadModel';
    expect(checkCall(mode, unload, withAuth())?.code).toBe(status.UNAUTHENTICATED);
    expect(checkCall(mode, unload, withAuth('Basic abc'))?.code).toBe(status.UNAUTHENTICATED);
    expect(checkCall(mode, unload, withAuth('Bearer wrong-token-0123456789'))?.code).toBe(status.UNAUTHENTICATED);
    expect(checkCall(mode, unload, withAuth(`Bearer ${analyzeToken}`))?.code).toBe(status.PERMISSION_DENIED);
    expect(checkCall(mode, unload, withAuth(`bearer ${adminToken}`))).toBeUndefined();
    expect(checkCall(mode, '/kt.v1.FaceAnalysis/Analyze', withAuth(`Bearer ${analyzeToken}`))).toBeUndefined();
    expect(checkCall(mode, '/grpc.health.v1.Health/Check', withAuth())).toBeUndefined();
    expect(checkCall({ kind: 'open' }, unload, withAuth())).toBeUndefined();
  });
});

describe('the start-up rule', () => {
  const none = new TokenStore([]);
  it('loopback without tokens is open; elsewhere it needs tokens or mutual TLS', () => {
    expect(['127.0.0.1', '127.3.2.1', '::1', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.10', '128.0.0.1'].some(isLoopbackHost)).toBe(false);
    expect(authModeOf(resolveServerConfig(), none).kind).toBe('open');
    expect(() => authModeOf(resolveServerConfig({ listenAddress: '0.0.0.0:50051' }), none)).toThrow(
      /refusing to listen on 0\.0\.0\.0:50051 without authentication/,
    );
    expect(authModeOf(resolveServerConfig({ listenAddress: '0.0.0.0:50051' }), tokens).kind).toBe('tokens');
    const mtls = { listenAddress: '[::]:50051', tlsCertFile: 's.pem', tlsKeyFile: 's.key', tlsClientCaFile: 'ca.pem' };
    expect(authModeOf(resolveServerConfig(mtls), none).kind).toBe('mtls');
    expect(() => authModeOf(resolveServerConfig({ allowUnauthenticated: false }), none)).toThrow(/no token is configured/);
  });

  it('TLS files come in pairs; mutual TLS needs the server certificate', () => {
    expect(() => resolveServerConfig({ tlsCertFile: 's.pem' })).toThrow(/tlsCertFile and tlsKeyFile must be set together/);
    expect(() => resolveServerConfig({ tlsClientCaFile: 'ca.pem' })).toThrow(/needs tlsCertFile/);
  });
});
