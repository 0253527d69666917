// `npm run docs`: rewrites the README's generated tables. The compatibility tables come from a
// throwaway server on a temporary SQLite file; the notes written by hand in them are kept.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { servedServices } from "../src/api/services.ts";
import { loadConfig } from "../src/config.ts";
import { startLatchkey } from "../src/latchkey.ts";
import { jsonLogger } from "../src/log.ts";
import { compatTables, configTable, notesOf, probeMethods, replaceSection, section } from "./readme.ts";

const dir = mkdtempSync(join(tmpdir(), "latchkey-docs-"));
try {
  const config = loadConfig({
    LATCHKEY_PORT: "0",
    LATCHKEY_DATABASE_URL: `sqlite:${join(dir, "docs.db")}`,
    LATCHKEY_ADMIN_PAT_PATH: join(dir, "admin.pat"),
    LATCHKEY_METRICS_ENABLED: "false",
  });
  const running = await startLatchkey(config, jsonLogger("silent"));
  try {
    const token = readFileSync(config.adminPatPath, "utf8").trim();
    const services = servedServices(running.app).map((s) => s.service);
    const implemented = await probeMethods(`http://127.0.0.1:${running.port}`, token, services);
    let readme = readFileSync("README.md", "utf8");
    const notes = notesOf(section(readme, "compatibility"));
    readme = replaceSection(readme, "compatibility", compatTables(services, implemented, notes));
    readme = replaceSection(readme, "configuration", configTable());
    writeFileSync("README.md", readme);
    console.log("README.md: configuration and compatibility tables written");
  } finally {
    await running.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
