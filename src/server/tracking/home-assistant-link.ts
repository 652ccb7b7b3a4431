// One Home Assistant discovery per MQTT publisher, made on first use (the publisher can come and go with the broker).
import { HomeAssistantDiscovery, type DiscoveryTransport } from '../../events/mqtt/home-assistant.js';

const discoveries = new WeakMap<object, HomeAssistantDiscovery>();

function isTransport(sink: unknown): sink is DiscoveryTransport {
  const t = sink as Partial<DiscoveryTransport> | undefined;
  return typeof t?.publishJson === 'function' && typeof t.subscribe === 'function' && typeof t.statusTopic === 'string';
}

/** The discovery of `sink` (the server's events sink); undefined when it is not an MQTT publisher. */
export function discoveryFor(sink: unknown, discoveryPrefix: string): HomeAssistantDiscovery | undefined {
  if (!isTransport(sink)) return undefined;
  let discovery = discoveries.get(sink);
  if (!discovery) {
    discovery = new HomeAssistantDiscovery(sink, { discoveryPrefix });
    discoveries.set(sink, discovery);
  }
  return discovery;
}
