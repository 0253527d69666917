import type { AggregateWrite, AppendRequest } from "../app/ports.ts";
import { inLog, type NewEvent, type RecordedEvent } from "../domain/events.ts";

// What both stores answer for an event they appended, once the log has given it a position.
export const recordedIn = (
  req: AppendRequest,
  w: AggregateWrite,
  e: NewEvent,
  sequence: number,
  position: number,
): RecordedEvent =>
  inLog(e, {
    aggregateType: w.ref.type,
    aggregateId: w.ref.id,
    sequence,
    owner: w.owner,
    creator: req.creator,
    createdAt: req.createdAt,
    position,
  });
