// The MQTT JSON contract of face tracks: one message per track event on `<prefix>/<node>/<stream>/events`, in
// Frigate's event shape ({ type, before, after }), so Frigate-aware automations read it with small changes.

/** The state of a track as events carry it (Frigate's `before` / `after` objects, face attributes added). */
export interface TrackState {
  /** Unique event id: `<start time in seconds>-<stream>-<track id>` (Frigate: `<start time>-<random>`). */
  id: string;
  /** The stream (Frigate: camera). */
  camera: string;
  node: string;
  /** Face.track_id on gRPC; unique within the stream while it is open. */
  track_id: number;
  /** Always `face` (Frigate: the object label). */
  label: 'face';
  /** The identified person and the similarity of the best match (Frigate's sub_label pair); null while unknown. */
  sub_label: [string, number] | null;
  /** Detector score of the latest face and the best one of the track. */
  score: number;
  top_score: number;
  /** Seconds since the Unix epoch (Frigate's unit); end_time is null until the track ends. */
  start_time: number;
  end_time: number | null;
  /** Capture (else receive) time of the latest face, seconds since the Unix epoch. */
  frame_time: number;
  /** Latest box in frame pixels, [x1, y1, x2, y2] as Frigate writes boxes. */
  box: [number, number, number, number];
  /** Frames with a face of the track. */
  frames: number;
  /** Whether the best face of the track is on the snapshot topic. */
  has_snapshot: boolean;
  /** Aggregated answers: age robust mean, gender and identity votes, smoothed emotion (absent: no answer yet). */
  attributes: {
    age?: number;
    gender?: { label: string; score: number };
    emotion?: { label: string; scores: Record<string, number> };
    identity?: { personId: string; name: string; similarity: number };
  };
}

/** On the wire at `<prefix>/<node>/<stream>/events`. `before` is absent on `new`. */
export interface TrackEventMessage {
  type: 'new' | 'update' | 'end';
  before?: TrackState;
  after: TrackState;
}
