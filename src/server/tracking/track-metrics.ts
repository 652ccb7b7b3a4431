// MOT-style counts of a tracker's output against ground truth: ID switches, fragmented people, false tracks.

/** One frame: ground-truth person per reported face (undefined for a face that is nobody) and the face's track id. */
export interface LabelledFrame {
  faces: readonly { person: string | undefined; trackId: number }[];
}

export interface TrackCounts {
  /** Frames in which a person's track id differs from the id it had the last time the person was seen. */
  idSwitches: number;
  /** People seen under more than one track id. */
  fragmentedPeople: number;
  /** Distinct track ids per person. */
  idsPerPerson: Record<string, number>;
  /** Track ids given to more than one person (one track jumping between people). */
  mergedTracks: number;
  /** Person observations in total. */
  observations: number;
}

/** Counts ID switches and fragmentation (CLEAR-MOT's IDSW, and a per-person fragment count). */
export function countTrackErrors(frames: readonly LabelledFrame[]): TrackCounts {
  const lastId = new Map<string, number>();
  const ids = new Map<string, Set<number>>();
  const peopleOfTrack = new Map<number, Set<string>>();
  let idSwitches = 0;
  let observations = 0;
  for (const frame of frames) {
    for (const { person, trackId } of frame.faces) {
      if (person === undefined) continue;
      observations += 1;
      const previous = lastId.get(person);
      if (previous !== undefined && previous !== trackId) idSwitches += 1;
      lastId.set(person, trackId);
      if (!ids.has(person)) ids.set(person, new Set());
      ids.get(person)!.add(trackId);
      if (!peopleOfTrack.has(trackId)) peopleOfTrack.set(trackId, new Set());
      peopleOfTrack.get(trackId)!.add(person);
    }
  }
  const idsPerPerson = Object.fromEntries([...ids].map(([p, s]) => [p, s.size]));
  return {
    idSwitches,
    fragmentedPeople: Object.values(idsPerPerson).filter((n) => n > 1).length,
    idsPerPerson,
    mergedTracks: [...peopleOfTrack.values()].filter((s) => s.size > 1).length,
    observations,
  };
}
