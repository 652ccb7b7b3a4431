// Bearer tokens with roles: read from a token file (JSON/YAML) and $KT_TOKENS, kept only as SHA-256 digests, compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { readConfigFile } from '../core/config-file.js';
import { InvalidInputError } from '../core/errors.js';
import { checkValue, literals } from '../core/schema.js';

/** `analyze`: Analyze, StreamAnalyze and the reads; `admin`: everything, including model and gallery writes. */
export const roleNames = ['analyze', 'admin'] as const;
export type RoleName = (typeof roleNames)[number];

/** Shortest plain token accepted: a guessable token on a LAN is no protection. */
export const minTokenLength = 16;

/** What a token file holds; a token is given in clear (`token`) or as the hex SHA-256 of its UTF-8 bytes (`sha256`). */
export const tokenFileSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Path or URL of this JSON Schema, for editor completion; ignored.' })),
    tokens: Type.Array(
      Type.Object(
        {
          name: Type.Optional(Type.String({ minLength: 1, description: 'Who holds the token (logged on refusals), e.g. `door-cam`.' })),
          role: literals(roleNames, { description: '`analyze` or `admin`.' }),
          token: Type.Optional(
            Type.String({ minLength: minTokenLength, description: `The token itself, at least ${minTokenLength} characters.` }),
          ),
          sha256: Type.Optional(
            Type.String({
              pattern: '^[0-9a-fA-F]{64}$',
              mustBe: '64 hex digits',
              description: 'Hex SHA-256 of the token (safer at rest).',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  {
    additionalProperties: false,
    title: 'kt token file',
    description: 'Bearer tokens with roles for `tokenFile` / $KT_TOKEN_FILE; clients send `authorization: Bearer <token>`.',
  },
);

export interface TokenEntry {
  readonly name: string;
  readonly role: RoleName;
  readonly digest: Buffer;
}

export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The configured tokens; `match` costs the same whichever entry (if any) matches. */
export class TokenStore {
  constructor(readonly entries: readonly TokenEntry[]) {}

  get size(): number {
    return this.entries.length;
  }

  /** The entry whose token this is, comparing every digest (no early exit) so timing tells nothing. */
  match(token: string): TokenEntry | undefined {
    const digest = tokenDigest(token);
    let found: TokenEntry | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(digest, entry.digest) && found === undefined) found = entry;
    }
    return found;
  }
}

/** Entries of a token file's content; `source` names the file in errors. */
export function tokenEntriesOf(value: unknown, source: string): TokenEntry[] {
  const file = checkValue(tokenFileSchema, value, source);
  return file.tokens.map((t, i) => {
    if ((t.token === undefined) === (t.sha256 === undefined)) {
      throw new InvalidInputError(`${source}: tokens[${i}] needs exactly one of "token" and "sha256"`);
    }
    const digest = t.token !== undefined ? tokenDigest(t.token) : Buffer.from(t.sha256!, 'hex');
    return { name: t.name ?? `${source}#${i}`, role: t.role, digest };
  });
}

/** `$KT_TOKENS`: `role:token` entries separated by commas, e.g. `admin:...,analyze:...`. */
export function envTokenEntries(text: string): TokenEntry[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part, i) => {
      const at = part.indexOf(':');
      const role = part.slice(0, at);
      const token = part.slice(at + 1);
      if (at < 0 || !(roleNames as readonly string[]).includes(role)) {
        throw new InvalidInputError(`KT_TOKENS entry ${i + 1}: expected "analyze:<token>" or "admin:<token>"`);
      }
      if (token.length < minTokenLength) {
        throw new InvalidInputError(`KT_TOKENS entry ${i + 1}: the token must have at least ${minTokenLength} characters`);
      }
      return { name: `KT_TOKENS#${i + 1}`, role: role as RoleName, digest: tokenDigest(token) };
    });
}

/** Every configured token: the token file (config `tokenFile`, else `$KT_TOKEN_FILE`) plus `$KT_TOKENS`. */
export async function loadTokens(tokenFile: string, env: Readonly<Record<string, string | undefined>>): Promise<TokenStore> {
  const file = tokenFile !== '' ? tokenFile : (env['KT_TOKEN_FILE'] ?? '');
  const entries = file !== '' ? tokenEntriesOf(await readConfigFile(file), file) : [];
  entries.push(...envTokenEntries(env['KT_TOKENS'] ?? ''));
  return new TokenStore(entries);
}
