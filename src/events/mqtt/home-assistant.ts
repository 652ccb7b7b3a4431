// Home Assistant MQTT discovery: per stream a device with face sensors (faces present, last person, last emotion,
// last age), a "face present" binary sensor and a camera on the best-face snapshot topic. Availability is the node's
// status topic; everything is announced again when Home Assistant's birth message (`<ha prefix>/status` = online)
// arrives, so a restarted Home Assistant finds the entities without a server restart.
import { streamTopic, topicSafe } from '../../contract/mqtt-topics.js';

/** What discovery needs of the MQTT publisher (MqttEventPublisher has it). */
export interface DiscoveryTransport {
  readonly options: { readonly topicPrefix: string; readonly nodeId: string };
  readonly statusTopic: string;
  publishJson(topic: string, message: object, retain: boolean): void;
  subscribe(topic: string, handler: (topic: string, payload: Buffer) => void): void;
}

/** The state of one stream's device, retained on `<prefix>/<node>/<stream>/state`. */
export interface StreamFaceState {
  /** Confirmed face tracks in view now. */
  faces: number;
  /** Name of the last identified person; '' when none was identified yet. */
  last_person: string;
  last_emotion: string;
  /** Age (robust mean of the last track), 0 when none. */
  last_age: number;
  /** ISO time of the last change. */
  last_change: string;
}

export interface HomeAssistantOptions {
  /** Home Assistant's discovery prefix. Default `homeassistant`. */
  discoveryPrefix: string;
}

interface Entity {
  component: 'sensor' | 'binary_sensor' | 'camera';
  key: string;
  name: string;
  extra: Record<string, unknown>;
}

const entities: readonly Entity[] = [
  {
    component: 'sensor',
    key: 'faces',
    name: 'Faces present',
    extra: { value_template: '{{ value_json.faces }}', state_class: 'measurement', icon: 'mdi:face-recognition' },
  },
  {
    component: 'sensor',
    key: 'last_person',
    name: 'Last person',
    extra: { value_template: '{{ value_json.last_person }}', icon: 'mdi:account' },
  },
  {
    component: 'sensor',
    key: 'last_emotion',
    name: 'Last emotion',
    extra: { value_template: '{{ value_json.last_emotion }}', icon: 'mdi:emoticon-outline' },
  },
  {
    component: 'sensor',
    key: 'last_age',
    name: 'Last age',
    extra: { value_template: '{{ value_json.last_age }}', unit_of_measurement: 'years', icon: 'mdi:cake-variant' },
  },
  {
    component: 'binary_sensor',
    key: 'face_present',
    name: 'Face present',
    extra: {
      value_template: "{{ 'ON' if value_json.faces > 0 else 'OFF' }}",
      payload_on: 'ON',
      payload_off: 'OFF',
      device_class: 'occupancy',
    },
  },
  { component: 'camera', key: 'snapshot', name: 'Best face', extra: {} },
];

export class HomeAssistantDiscovery {
  private readonly transport: DiscoveryTransport;
  private readonly options: HomeAssistantOptions;
  /** Streams announced so far, with their last state (re-sent after Home Assistant's birth message). */
  private readonly streams = new Map<string, StreamFaceState | undefined>();

  constructor(transport: DiscoveryTransport, options: Partial<HomeAssistantOptions> = {}) {
    this.transport = transport;
    this.options = { discoveryPrefix: options.discoveryPrefix ?? 'homeassistant' };
    transport.subscribe(this.birthTopic, (_topic, payload) => {
      if (payload.toString('utf8').trim() === 'online') this.announceAll();
    });
  }

  /** Home Assistant's birth and last-will topic. */
  get birthTopic(): string {
    return `${this.options.discoveryPrefix}/status`;
  }

  /** `<prefix>/<node>/<stream>/state`. */
  stateTopic(streamId: string): string {
    const { topicPrefix, nodeId } = this.transport.options;
    return `${topicPrefix}/${nodeId}/${topicSafe(streamId)}/state`;
  }

  /** The discovery config topic and payload of every entity of a stream. */
  discoveryMessages(streamId: string): { topic: string; payload: Record<string, unknown> }[] {
    const { topicPrefix, nodeId } = this.transport.options;
    const objectId = `kt_${topicSafe(nodeId)}_${topicSafe(streamId)}`.replace(/[^A-Za-z0-9_-]/g, '_');
    const device = {
      identifiers: [objectId],
      name: `${streamId} (${nodeId})`,
      manufacturer: 'kt-edge-face',
      model: 'face analysis stream',
    };
    return entities.map((e) => ({
      topic: `${this.options.discoveryPrefix}/${e.component}/${objectId}/${e.key}/config`,
      payload: {
        name: e.name,
        unique_id: `${objectId}_${e.key}`,
        object_id: `${objectId}_${e.key}`,
        ...(e.component === 'camera'
          ? { topic: streamTopic(topicPrefix, nodeId, streamId, 'snapshot') }
          : { state_topic: this.stateTopic(streamId) }),
        availability: [{ topic: this.transport.statusTopic, payload_available: 'online', payload_not_available: 'offline' }],
        device,
        ...e.extra,
      },
    }));
  }

  /** Announces a stream's device (retained configs) once per stream id; later calls do nothing. */
  announce(streamId: string): void {
    if (this.streams.has(streamId)) return;
    this.streams.set(streamId, undefined);
    this.sendConfigs(streamId);
  }

  /** Publishes a stream's state (retained), announcing the stream first if needed. */
  publishState(streamId: string, state: StreamFaceState): void {
    this.announce(streamId);
    this.streams.set(streamId, state);
    this.transport.publishJson(this.stateTopic(streamId), state, true);
  }

  /** Every stream again: configs, then its last state (Home Assistant restarted). */
  announceAll(): void {
    for (const [streamId, state] of this.streams) {
      this.sendConfigs(streamId);
      if (state) this.transport.publishJson(this.stateTopic(streamId), state, true);
    }
  }

  private sendConfigs(streamId: string): void {
    for (const m of this.discoveryMessages(streamId)) this.transport.publishJson(m.topic, m.payload, true);
  }
}
