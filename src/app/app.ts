import type { Principal } from "../domain/permissions.ts";
import { authenticate } from "./authenticate.ts";
import type { AppDeps } from "./deps.ts";
import { policyCommands } from "./policies.ts";
import { userQueries } from "./queries.ts";
import { resourceCommands } from "./resources.ts";
import { sessionCommands } from "./sessions.ts";
import { userCommands } from "./users.ts";

export type App = ReturnType<typeof createApp>;

// Everything the API adapters may ask of Latchkey, bound to one instance.
export function createApp(deps: AppDeps, instanceId: string) {
  const users = userCommands(deps, instanceId);
  return {
    deps,
    instanceId,
    users,
    resources: resourceCommands(deps, instanceId, users),
    queries: userQueries(deps, instanceId, users),
    sessions: sessionCommands(deps, instanceId, users),
    policies: policyCommands(deps, instanceId),
    authenticate: (header: string | undefined): Promise<Principal> => authenticate(deps, instanceId, header),
  };
}
