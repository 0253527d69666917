// An event as a decision produces it: what happened, before the store gives it a place.
export interface NewEvent {
  readonly type: string;
  readonly payload: Readonly<Record<string, unknown>> | null;
}

export type AggregateType = "instance" | "org" | "user" | "session";

export interface AggregateRef {
  readonly type: AggregateType;
  readonly id: string;
}

// An event as the log holds it. `sequence` counts 1, 2, 3, ... per aggregate without gaps;
// `position` orders all events of an instance.
export interface RecordedEvent extends NewEvent {
  readonly aggregateType: AggregateType;
  readonly aggregateId: string;
  readonly sequence: number;
  readonly owner: string;
  readonly creator: string;
  readonly createdAt: Date;
  readonly position: number;
}

// An event with its place in the log. Written out field by field: V8 puts an object made as
// `{ ...e, sequence }` (a spread followed by fields its source lacks) straight into the old
// generation, and one is made for every event written; with the statements once built the same
// way, that brought a full collection about every second under load (docs/benchmarks.md, 15).
export function inLog(e: NewEvent, place: Omit<RecordedEvent, keyof NewEvent>): RecordedEvent {
  return {
    type: e.type,
    payload: e.payload,
    aggregateType: place.aggregateType,
    aggregateId: place.aggregateId,
    sequence: place.sequence,
    owner: place.owner,
    creator: place.creator,
    createdAt: place.createdAt,
    position: place.position,
  };
}

// A decision either refuses with an error, or returns events to append. A few refusals must
// still leave a trace (a wrong verification code counts towards voiding it): those return
// events and an error, and the error is answered after the events are stored.
export type Decision = { readonly events: readonly NewEvent[]; readonly error?: Error };

export const emit = (...events: NewEvent[]): Decision => ({ events });
