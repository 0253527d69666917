import type { AggregateRef, NewEvent } from "../domain/events.ts";
import { emptyResource, foldResource, resourceEvent } from "../domain/resource/state.ts";
import { UserEvent } from "../domain/user/events.ts";
import { emptyUser, foldUser } from "../domain/user/state.ts";
import type { AppDeps } from "./deps.ts";
import { newId } from "./ids.ts";
import { type AggregateWrite, type InstanceRow, UniqueViolation } from "./ports.ts";
import { projectResource, projectUser } from "./projection.ts";
import { hashToken, newToken } from "./secrets.ts";
import { stamp } from "./transact.ts";

export interface Bootstrapped {
  readonly instance: InstanceRow;
  // Set only on the start that created the instance: the admin's token, shown this once.
  readonly adminToken: string | null;
}

// The first start creates the instance, its default organization and an admin machine user
// with IAM_OWNER and a token; every later start finds the instance and changes nothing. When
// several nodes start together on an empty database, one wins and the others read its result.
export async function bootstrap(deps: AppDeps): Promise<Bootstrapped> {
  const existing = await deps.store.getInstance();
  if (existing) return { instance: existing, adminToken: null };

  const now = deps.clock.now();
  const instanceId = newId();
  const orgId = newId();
  const adminId = newId();
  const token = newToken();
  const inst = resourceEvent("instance");

  const aggregates: {
    ref: AggregateRef & { type: "instance" | "org" | "user" };
    owner: string;
    events: NewEvent[];
  }[] = [
    {
      ref: { type: "instance", id: instanceId },
      owner: instanceId,
      events: [
        { type: inst.added, payload: { name: "Latchkey" } },
        { type: inst.defaultOrgSet, payload: { orgId } },
        { type: inst.memberAdded, payload: { userId: adminId, roles: ["IAM_OWNER"] } },
      ],
    },
    {
      ref: { type: "org", id: orgId },
      owner: orgId,
      events: [{ type: resourceEvent("org").added, payload: { name: "Default" } }],
    },
    {
      ref: { type: "user", id: adminId },
      owner: orgId,
      events: [
        {
          type: UserEvent.machineAdded,
          payload: { username: "admin", name: "Administrator", description: "Created at first start" },
        },
        {
          type: UserEvent.patAdded,
          payload: { tokenId: newId(), tokenHash: hashToken(token), expiresAt: null },
        },
      ],
    },
  ];
  const writes: AggregateWrite[] = aggregates.map((a) => ({ ...a, expectedSequence: 0 }));
  const readModel = aggregates.flatMap((a) => {
    const stamped = stamp(a.ref, a.owner, adminId, 0, now, a.events);
    return a.ref.type === "user"
      ? projectUser(foldUser(emptyUser(a.ref.id), stamped), stamped)
      : projectResource(foldResource(emptyResource(a.ref.type, a.ref.id), stamped), stamped, instanceId);
  });
  try {
    await deps.store.append({ instanceId, creator: adminId, createdAt: now, writes, readModel });
  } catch (err) {
    if (!(err instanceof UniqueViolation && err.what === "instance")) throw err;
    const winner = await deps.store.getInstance();
    if (!winner) throw err;
    return { instance: winner, adminToken: null };
  }
  return { instance: { id: instanceId, name: "Latchkey", defaultOrgId: orgId }, adminToken: token };
}
