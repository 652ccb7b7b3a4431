// MQTT test helpers: a subscriber that connects, subscribes and records every message, and clean-up of retained topics.
import { randomBytes } from 'node:crypto';
import { connectAsync, type MqttClient } from 'mqtt';
import { vi } from 'vitest';

export interface ReceivedMessage {
  topic: string;
  /** The payload as UTF-8 text; `json()` parses it. */
  payload: string;
  retain: boolean;
}

export interface TopicRecorder {
  client: MqttClient;
  /** Every message received so far, in arrival order. */
  messages: ReceivedMessage[];
  /** Resolves with the messages once `predicate` holds; fails after `timeoutMs` naming `what` and listing what was seen. */
  waitFor(predicate: (messages: ReceivedMessage[]) => boolean, what: string, timeoutMs?: number): Promise<ReceivedMessage[]>;
  end(): Promise<void>;
}

/** Parses a recorded payload as JSON. */
export function json<T = Record<string, unknown>>(message: ReceivedMessage): T {
  return JSON.parse(message.payload) as T;
}

function seen(messages: ReceivedMessage[]): string {
  return JSON.stringify(messages.map((m) => `${m.topic} ${m.payload.slice(0, 60)}`));
}

/** One connection attempt, no automatic reconnect: a broker that is not there is an immediate error. */
function connectOnce(url: string, role: string, connectTimeoutMs: number): Promise<MqttClient> {
  const clientId = `kt-test-${role}-${randomBytes(4).toString('hex')}`;
  return connectAsync(url, { clientId, reconnectPeriod: 0, connectTimeout: connectTimeoutMs }, false);
}

/** Connects to `url` (no automatic reconnect), subscribes to `filter` with QoS 1 and records what arrives. */
export async function recordTopic(url: string, filter: string): Promise<TopicRecorder> {
  const client = await connectOnce(url, 'sub', 5000);
  client.on('error', () => {}); // a lost subscriber shows up as a waitFor timeout that lists what it saw
  const messages: ReceivedMessage[] = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload: payload.toString('utf8'), retain: packet.retain }));
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    client,
    messages,
    waitFor(predicate, what, timeoutMs = 5000) {
      return vi.waitFor(
        () => {
          if (!predicate(messages)) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received: ${seen(messages)}`);
          return messages;
        },
        { timeout: timeoutMs, interval: 20 },
      );
    },
    async end() {
      await client.endAsync(true);
    },
  };
}

/** Removes a retained message (an empty retained payload deletes it); a broker that is gone has nothing to clean. */
export async function clearRetained(url: string, topic: string): Promise<void> {
  let client: MqttClient | undefined;
  try {
    client = await connectOnce(url, 'clean', 3000);
    await client.publishAsync(topic, '', { qos: 1, retain: true });
  } catch {
    // The broker is gone already: nothing retained to clean.
  } finally {
    await client?.endAsync(true);
  }
}
