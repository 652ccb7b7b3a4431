// Names of the kt.v1 face-tracking enums as the SDK and the gateway config spell them (the MQTT events' `type` too).
import { FacesTopicMode, TrackEventType, TrackingMode } from '../gen/kt/v1/face_analysis.js';

/** TrackingConfig.mode and TrackingConfig.faces_topic without their prefix; absent means the server's default. */
export type OnOffName = 'on' | 'off';
export const onOffNames: readonly OnOffName[] = ['on', 'off'];

export const trackingModeOf: Readonly<Record<OnOffName, TrackingMode>> = {
  on: TrackingMode.TRACKING_MODE_ON,
  off: TrackingMode.TRACKING_MODE_OFF,
};

export const facesTopicModeOf: Readonly<Record<OnOffName, FacesTopicMode>> = {
  on: FacesTopicMode.FACES_TOPIC_MODE_ON,
  off: FacesTopicMode.FACES_TOPIC_MODE_OFF,
};

/** Frigate's event types: a person arrived, something shown about them changed, they left. */
export type TrackEventTypeName = 'new' | 'update' | 'end';
export const trackEventTypeNames: readonly TrackEventTypeName[] = ['new', 'update', 'end'];

export const trackEventTypeOf: Readonly<Record<TrackEventTypeName, TrackEventType>> = {
  new: TrackEventType.TRACK_EVENT_TYPE_NEW,
  update: TrackEventType.TRACK_EVENT_TYPE_UPDATE,
  end: TrackEventType.TRACK_EVENT_TYPE_END,
};

/** The name of a TrackEventType; undefined for UNSPECIFIED and values this build does not know. */
export function trackEventTypeName(type: TrackEventType): TrackEventTypeName | undefined {
  return trackEventTypeNames.find((name) => trackEventTypeOf[name] === type);
}
