// Registers the built-in plugins explicitly (called by the entry point), so plugin.ts stays free of side effects.
import { PluginRegistry } from './plugin.js';
import { createMqttForwardPlugin } from './plugin-mqtt-forward.js';
import type { FacesEventPublisherFactory } from './plugin-mqtt-forward.js';
import { webhookPlugin } from './plugin-webhook.js';

export interface BuiltinPluginDeps {
  /** The MQTT publisher factory for `mqtt-forward` (the server's createMqttPublisher); without it the plugin is not registered. */
  createMqttPublisher?: FacesEventPublisherFactory;
}

/** Registers `webhook` and (given a publisher factory) `mqtt-forward`; returns the registry. */
export function registerBuiltinPlugins(registry: PluginRegistry = new PluginRegistry(), deps: BuiltinPluginDeps = {}): PluginRegistry {
  registry.register(webhookPlugin);
  if (deps.createMqttPublisher) registry.register(createMqttForwardPlugin(deps.createMqttPublisher));
  return registry;
}
