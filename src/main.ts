import { ConfigError, loadConfig } from "./config.ts";
import { type Running, startLatchkey } from "./latchkey.ts";
import { jsonLogger } from "./log.ts";

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = jsonLogger(config.logLevel);

  // Signals are taken before start: one that arrives while starting stops the server as soon
  // as it is up, instead of killing the process half-way.
  let running: Running | null = null;
  let stopSignal: string | null = null;
  const stop = () => {
    if (!running || !stopSignal) return;
    log.info("stopping: finishing in-flight requests", { signal: stopSignal });
    running.stop().then(
      () => process.exit(0),
      (err) => {
        log.error("shutdown failed", { error: String(err) });
        process.exit(1);
      },
    );
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (stopSignal) return;
      stopSignal = signal;
      stop();
    });
  }

  running = await startLatchkey(config, log);
  if (running.adminPatWritten) log.info("admin token written", { path: running.adminPatWritten });
  const shown = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  log.info("latchkey started", {
    url: `http://${shown.includes(":") ? `[${shown}]` : shown}:${running.port}`,
    database: config.database.kind,
    sms: config.sms.provider.kind,
  });
  if (config.sms.provider.kind === "log")
    log.warn("SMS are written to this log, not sent: set LATCHKEY_SMS_PROVIDER to webhook or twilio");
  if (!config.sms.outboxKey)
    log.warn("LATCHKEY_SMS_OUTBOX_KEY is not set: codes waiting in the SMS outbox are stored unencrypted");
  stop();
}

main().catch((err) => {
  process.stderr.write(`latchkey failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
