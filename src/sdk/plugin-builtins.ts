// Registers the built-in plugins explicitly (called by the entry point), so plugin.ts stays free of side effects.
import { PluginRegistry } from './plugin.js';
import { mqttForwardPlugin } from './plugin-mqtt-forward.js';
import { webhookPlugin } from './plugin-webhook.js';

/** Registers `webhook` and `mqtt-forward`; returns the registry. */
export function registerBuiltinPlugins(registry: PluginRegistry = new PluginRegistry()): PluginRegistry {
  registry.register(webhookPlugin);
  registry.register(mqttForwardPlugin);
  return registry;
}
