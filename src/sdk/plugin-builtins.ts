// Registers the SDK's built-in sinks explicitly (called by the entry point), so plugin.ts stays free of side effects.
import { PluginRegistry } from './plugin.js';
import { jsonlPlugin } from './plugin-jsonl.js';
import { mqttForwardPlugin } from './plugin-mqtt-forward.js';
import { webhookPlugin } from './plugin-webhook.js';

/** Registers the sinks `webhook`, `mqtt-forward` (also as `mqtt`) and `jsonl`; returns the registry. */
export function registerBuiltinPlugins(registry: PluginRegistry = new PluginRegistry()): PluginRegistry {
  registry.register(webhookPlugin);
  registry.register(mqttForwardPlugin, ['mqtt']);
  registry.register(jsonlPlugin);
  return registry;
}
