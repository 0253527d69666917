// The README's generated parts: the configuration table, from the schema in src/config.ts, and
// the compatibility tables, from what a running server answers. `npm run docs` writes them;
// test/readme.test.ts fails when the README no longer matches.
import { create, type DescMethod, type DescService, getOption, hasOption } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { http as httpRule } from "@zitadel/proto/google/api/annotations_pb.js";
import { restPrefixes } from "../src/api/services.ts";
import { settingNames, settings } from "../src/config.ts";

const begin = (name: string) => `<!-- generated:${name} (npm run docs) -->`;
const end = (name: string) => `<!-- /generated:${name} -->`;

export function section(readme: string, name: string): string {
  const from = readme.indexOf(begin(name));
  const to = readme.indexOf(end(name));
  if (from < 0 || to < from) throw new Error(`README has no generated section "${name}"`);
  return readme.slice(from + begin(name).length, to).trim();
}

export function replaceSection(readme: string, name: string, body: string): string {
  const from = readme.indexOf(begin(name));
  const to = readme.indexOf(end(name));
  if (from < 0 || to < from) throw new Error(`README has no generated section "${name}"`);
  return `${readme.slice(0, from)}${begin(name)}\n${body}\n${readme.slice(to)}`;
}

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function configTable(): string {
  const rows = settingNames.map((name) => {
    const s = settings[name];
    const shownDefault = s.default === "" ? "" : `\`${s.default}\``;
    return `| \`${name}\` | \`${s.key}\` | ${shownDefault} | ${cell(s.meaning)} |`;
  });
  return ["| Variable | File key | Default | Meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

const bearer =
  (token: string): Interceptor =>
  (next) =>
  (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };

// Which methods a server implements, by asking it: every method is called with an empty
// request as the admin, and only an explicit Unimplemented counts as not implemented.
export async function probeMethods(
  baseUrl: string,
  token: string,
  services: readonly DescService[],
): Promise<Map<string, boolean>> {
  const transport = createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
  const implemented = new Map<string, boolean>();
  for (const service of services) {
    const client = createClient(service, transport) as unknown as Record<
      string,
      (req: unknown) => Promise<unknown>
    >;
    for (const method of service.methods) {
      let code: Code | null = null;
      try {
        await client[method.localName]!(create(method.input));
      } catch (err) {
        code = ConnectError.from(err).code;
      }
      implemented.set(`${service.typeName}/${method.name}`, code !== Code.Unimplemented);
    }
  }
  return implemented;
}

// The REST path; "—" where the descriptor has none (the method is served on gRPC, gRPC-web and
// Connect only, as in ZITADEL).
function restOf(method: DescMethod): string {
  if (!hasOption(method, httpRule)) return "—";
  const p = getOption(method, httpRule).pattern;
  const prefix = restPrefixes[method.parent.typeName] ?? "";
  return p.case === "get" ||
    p.case === "post" ||
    p.case === "put" ||
    p.case === "delete" ||
    p.case === "patch"
    ? `\`${p.case.toUpperCase()} ${prefix}${p.value}\``
    : "—";
}

// A service of which Latchkey serves a handful of its hundreds of methods (ZITADEL's v1
// management API) lists only those.
const longService = 100;

const header = ["| Method | REST | Latchkey | Differences from ZITADEL |", "| --- | --- | --- | --- |"];
const rowPattern = /^\| `(\w+)` \| [^|]*\| (yes|no) \|(.*)\|$/;

// The hand-written notes of the tables now in the README, by "service/Method".
export function notesOf(compatSection: string): Map<string, string> {
  const notes = new Map<string, string>();
  let service = "";
  for (const line of compatSection.split("\n")) {
    const heading = /^### `([\w.]+)`/.exec(line);
    if (heading?.[1]) service = heading[1];
    const row = rowPattern.exec(line);
    if (row?.[1] && row[3] !== undefined) notes.set(`${service}/${row[1]}`, row[3].trim());
  }
  return notes;
}

export function compatTables(
  services: readonly DescService[],
  implemented: ReadonlyMap<string, boolean>,
  notes: ReadonlyMap<string, string>,
): string {
  return services
    .map((service) => {
      const long = service.methods.length > longService;
      const listed = long
        ? service.methods.filter((m) => implemented.get(`${service.typeName}/${m.name}`) === true)
        : service.methods;
      const rows = listed.map((m) => {
        const key = `${service.typeName}/${m.name}`;
        const yes = implemented.get(key) === true;
        return `| \`${m.name}\` | ${restOf(m)} | ${yes ? "yes" : "no"} | ${notes.get(key) ?? ""} |`.replace(
          / +\|$/,
          " |",
        );
      });
      const count = service.methods.filter((m) => implemented.get(`${service.typeName}/${m.name}`)).length;
      return [
        `### \`${service.typeName}\``,
        "",
        `${count} of ${service.methods.length} methods implemented; the others answer Unimplemented (HTTP 501)${long ? " and are not listed" : ""}.`,
        "",
        ...header,
        ...rows,
      ].join("\n");
    })
    .join("\n\n");
}
