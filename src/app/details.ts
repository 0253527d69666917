import type { RecordedEvent } from "../domain/events.ts";

// What every write answers: the last event written, its time, and the owning organization.
export interface Details {
  readonly sequence: number;
  readonly changeDate: Date;
  readonly resourceOwner: string;
}

export function detailsOf(recorded: readonly RecordedEvent[], fallback?: Details): Details {
  const last = recorded.at(-1);
  if (!last) {
    if (fallback) return fallback;
    throw new Error("a write recorded no event");
  }
  return { sequence: last.sequence, changeDate: last.createdAt, resourceOwner: last.owner };
}
