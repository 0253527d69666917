import type { AppendRequest, TokenRow } from "../../app/ports.ts";
import type { Membership } from "../../domain/permissions.ts";
import type { UserState } from "../../domain/user/state.ts";

// What every call reads first: the caller's token with its memberships, and the user it acts
// on. Reading them from SQLite and parsing their JSON cost about a fifth of a call's CPU
// (docs/benchmarks.md), and this process writes almost everything the file holds, so it keeps
// what it last read or wrote:
// - a write is applied here right after its COMMIT (afterAppend), before other code runs;
// - a write by another connection, in this process or another, moves SQLite's data_version,
//   and everything kept is dropped before the next read (fresh);
// - a user is kept only when its row has no events after it, so that state and log agree;
// - a decision made on kept state is still checked by the append's sequence, like any other.
// Kept objects are shared: like all domain state, they are never changed, only replaced.
export interface TokenEntry {
  readonly token: TokenRow;
  readonly memberships: Membership[];
}

export class ReadCache {
  private readonly users = new Map<string, UserState>();
  private readonly tokens = new Map<string, TokenEntry>();
  private version: number | null = null;
  private checked = false;

  constructor(
    // PRAGMA data_version on the store's connection.
    private readonly dataVersion: () => number,
    private readonly maxUsers: number,
  ) {}

  // Called before reading what is kept. Asking SQLite costs as much as a small query, so it is
  // asked once per turn of the event loop: reads in one turn see the file as it was when the turn
  // began, as if they had all been made at its start.
  fresh(): void {
    if (this.checked) return;
    this.checked = true;
    setImmediate(() => {
      this.checked = false;
    });
    const v = this.dataVersion();
    if (v === this.version) return;
    this.users.clear();
    this.tokens.clear();
    this.version = v;
  }

  user(instanceId: string, userId: string): UserState | undefined {
    return this.users.get(key(instanceId, userId));
  }

  keepUser(instanceId: string, user: UserState): void {
    const k = key(instanceId, user.id);
    // Map order is insertion order: deleting first makes this the newest; the oldest goes.
    this.users.delete(k);
    this.users.set(k, user);
    if (this.users.size > this.maxUsers) {
      const oldest = this.users.keys().next().value;
      if (oldest !== undefined) this.users.delete(oldest);
    }
  }

  token(instanceId: string, tokenHash: string): TokenEntry | undefined {
    return this.tokens.get(key(instanceId, tokenHash));
  }

  keepToken(instanceId: string, tokenHash: string, entry: TokenEntry): void {
    // Few callers hold tokens compared with users; past the bound, start over.
    if (this.tokens.size >= this.maxUsers) this.tokens.clear();
    this.tokens.set(key(instanceId, tokenHash), entry);
  }

  // After the append's COMMIT.
  afterAppend(req: AppendRequest): void {
    for (const w of req.writes)
      if (w.ref.type === "user" && w.events.length > 0) this.users.delete(key(req.instanceId, w.ref.id));
    for (const c of req.readModel) {
      if (c.kind === "user.put") this.keepUser(req.instanceId, c.user);
      // Token and membership changes are rare: forget every token rather than track which.
      else if (c.kind.startsWith("token.") || c.kind.startsWith("member.")) this.tokens.clear();
    }
  }
}

const key = (instanceId: string, id: string) => `${instanceId}\u0000${id}`;
