import { type Running, startLatchkey } from "../latchkey.ts";
import { processLogger } from "../log.ts";
import { type Command, configHelp, configOption, loadFor } from "./command.ts";
import { boundHeapGrowth } from "./heap.ts";

export const start: Command = {
  name: "start",
  summary: "Run the server (creates the instance and its admin token on the first start)",
  help: `Serves REST, gRPC, gRPC-web and Connect on one port, with /debug/healthz, /debug/ready
and /metrics. The first start on an empty database creates the instance, its default
organization and an admin machine user, and writes the admin's token to the admin token file.
Migrations run at every start. SIGTERM or SIGINT finishes the requests in flight, then exits 0.

Options:
${configHelp}`,
  options: configOption,
  async run(values, env) {
    const { config } = loadFor(values, env);
    const log = processLogger(config.logLevel, config.logFormat);
    boundHeapGrowth();

    // Signals are taken before start: one that arrives while starting stops the server as soon
    // as it is up, instead of killing the process half-way.
    let running: Running | null = null;
    let stopSignal: string | null = null;
    let finish: (code: number) => void = () => {};
    const finished = new Promise<number>((resolve) => {
      finish = (code) => {
        log.flush();
        resolve(code);
      };
    });
    const stop = () => {
      if (!running || !stopSignal) return;
      log.info("stopping: finishing in-flight requests", { signal: stopSignal });
      running.stop().then(
        () => finish(0),
        (err) => {
          log.error("shutdown failed", { error: String(err) });
          finish(1);
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

    try {
      running = await startLatchkey(config, log);
    } catch (err) {
      log.flush();
      process.stderr.write(`latchkey failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    }
    if (running.adminPatWritten) log.info("admin token written", { path: running.adminPatWritten });
    const shown = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
    log.info("latchkey started", {
      url: `http://${shown.includes(":") ? `[${shown}]` : shown}:${running.port}`,
      database: config.database.kind,
      sms: config.sms.provider.kind,
      metrics: config.metricsEnabled,
    });
    if (config.sms.provider.kind === "log")
      log.warn("SMS are written to this log, not sent: set LATCHKEY_SMS_PROVIDER to webhook or twilio");
    if (!config.sms.outboxKey)
      log.warn("LATCHKEY_SMS_OUTBOX_KEY is not set: codes waiting in the SMS outbox are stored unencrypted");
    stop();
    return finished;
  },
};
