// Writes the JSON Schemas of the config formats (server config file, device profile, model.json, built-in plugin
// options) from their TypeBox definitions into schemas/ (or the folder given as the first argument).
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { mustBeKeyword } from '../src/core/schema.js';
import { gatewayConfigSchema } from '../src/gateway/config.js';
import { modelManifestSchema } from '../src/models/manifest.js';
import { snapshotSink } from '../src/gateway/sinks/snapshot.js';
import { jsonlPlugin } from '../src/sdk/plugin-jsonl.js';
import { mqttForwardPlugin } from '../src/sdk/plugin-mqtt-forward.js';
import { webhookPlugin } from '../src/sdk/plugin-webhook.js';
import { tokenFileSchema } from '../src/server/auth-tokens.js';
import { serverConfigFileSchema } from '../src/server/config.js';
import { deviceProfileSchema } from '../src/server/device-profile.js';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

const schemas: { file: string; from: string; schema: TSchema }[] = [
  { file: 'server-config.schema.json', from: 'src/server/config.ts (serverConfigFileSchema)', schema: serverConfigFileSchema },
  { file: 'gateway-config.schema.json', from: 'src/gateway/config.ts (gatewayConfigSchema)', schema: gatewayConfigSchema },
  { file: 'device-profile.schema.json', from: 'src/server/device-profile.ts (deviceProfileSchema)', schema: deviceProfileSchema },
  { file: 'token-file.schema.json', from: 'src/server/auth-tokens.ts (tokenFileSchema)', schema: tokenFileSchema },
  { file: 'model-manifest.schema.json', from: 'src/models/manifest.ts (modelManifestSchema)', schema: modelManifestSchema },
  { file: 'plugin-webhook.schema.json', from: 'src/sdk/plugin-webhook.ts (webhookPlugin.schema)', schema: webhookPlugin.schema },
  {
    file: 'plugin-mqtt-forward.schema.json',
    from: 'src/sdk/plugin-mqtt-forward.ts (mqttForwardPlugin.schema)',
    schema: mqttForwardPlugin.schema,
  },
  { file: 'plugin-jsonl.schema.json', from: 'src/sdk/plugin-jsonl.ts (jsonlPlugin.schema)', schema: jsonlPlugin.schema },
  { file: 'plugin-snapshot.schema.json', from: 'src/gateway/sinks/snapshot.ts (snapshotSink.schema)', schema: snapshotSink.schema },
];

/** Plain JSON Schema: TypeBox's symbol keys vanish in JSON; this project's own keyword (message wording) is dropped. */
function jsonOf(file: string, from: string, schema: TSchema): string {
  const document = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: file,
    $comment: `Generated from ${from} by npm run gen:schemas. DO NOT EDIT.`,
    ...schema,
  };
  return `${JSON.stringify(document, (key, value: unknown) => (key === mustBeKeyword ? undefined : value), 2)}\n`;
}

const outDir = resolve(process.argv[2] ?? join(root, 'schemas'));
await mkdir(outDir, { recursive: true });
for (const { file, from, schema } of schemas) await writeFile(join(outDir, file), jsonOf(file, from, schema));
process.stdout.write(`gen-schemas: wrote ${schemas.length} schemas to ${outDir}\n`);
