// MQTT publisher without a broker: option validation (before any connection is made) and the bounded outbound queue.
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/core/errors.js';
import { createLogger } from '../src/core/log.js';
import { BoundedQueue } from '../src/events/mqtt/bounded-queue.js';
import { createMqttPublisher } from '../src/events/mqtt/publisher.js';
import type { PublisherOptions } from '../src/events/mqtt/publisher-options.js';

const quiet = createLogger('mqtt-test', 'error');

describe('MQTT publisher options', () => {
  it('rejects unknown and invalid options with InvalidInputError', () => {
    expect(() => createMqttPublisher({ qos: 3 as 0 }, quiet)).toThrow(InvalidInputError);
    expect(() => createMqttPublisher({ topicPrefix: 'kt/#' }, quiet)).toThrow(InvalidInputError);
    expect(() => createMqttPublisher({ maxReconnectPeriodMs: 10, reconnectPeriodMs: 100 }, quiet)).toThrow(InvalidInputError);
    expect(() => createMqttPublisher({ url: 'http://example' }, quiet)).toThrow(InvalidInputError);
    expect(() => createMqttPublisher({ retryMs: 5 } as Partial<PublisherOptions>, quiet)).toThrow(
      /unknown MQTT publisher option "retryMs"/,
    );
  });
});

describe('bounded outbound queue', () => {
  it('keeps order, evicts the oldest when full, and never grows past its capacity', () => {
    const queue = new BoundedQueue<number>(3);
    expect([1, 2, 3].map((n) => queue.push(n))).toEqual([undefined, undefined, undefined]);
    expect(queue.push(4)).toBe(1);
    expect(queue.push(5)).toBe(2);
    expect(queue.length).toBe(3);
    expect([queue.shift(), queue.shift()]).toEqual([3, 4]);
    queue.push(6);
    expect([queue.shift(), queue.shift(), queue.shift()]).toEqual([5, 6, undefined]);
    const none = new BoundedQueue<number>(0);
    expect(none.push(1)).toBe(1);
    expect(none.length).toBe(0);
  });
});
