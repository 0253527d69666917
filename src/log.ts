import pino from "pino";
import type { Logger } from "./app/deps.ts";
import type { LogFormat, LogLevel } from "./config.ts";

// The Logger port backed by pino: one JSON object a line, or, for a person at a terminal, a
// short readable line. The app and the API know only the port.
export interface LogHandle extends Logger {
  // Writes out what is still buffered; called before the process exits.
  flush(): void;
}

type Write = (line: string) => void;

const levelColor: Record<string, string> = { info: "32", warn: "33", error: "31", debug: "90" };

// `12:04:05.123 INFO  request method=... code=ok` from pino's JSON line.
export function prettyLine(json: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json);
  } catch {
    return json;
  }
  const { time, level, msg, ...fields } = o;
  const clock = typeof time === "string" ? time.slice(11, 23) : "";
  const lvl = String(level).toUpperCase().padEnd(5);
  const shownLevel = color ? `\x1b[${levelColor[String(level)] ?? "0"}m${lvl}\x1b[0m` : lvl;
  const rest = Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${clock} ${shownLevel} ${String(msg)}${rest === "" ? "" : ` ${rest}`}\n`;
}

function build(level: LogLevel, destination: pino.DestinationStream, flush: () => void): LogHandle {
  const p = pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  const at =
    (lvl: "info" | "warn" | "error") =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (fields) p[lvl](fields, msg);
      else p[lvl](msg);
    };
  return { info: at("info"), warn: at("warn"), error: at("error"), flush };
}

// The process's logger on stdout. JSON is written asynchronously so that a request never waits
// on the terminal or the pipe; pretty output is for a person and written as it comes.
export function processLogger(level: LogLevel, format: LogFormat): LogHandle {
  const pretty = format === "pretty" || (format === "auto" && process.stdout.isTTY === true);
  if (pretty) {
    const color = process.stdout.isTTY === true;
    return build(level, { write: (line: string) => process.stdout.write(prettyLine(line, color)) }, () => {});
  }
  const dest = pino.destination({ dest: 1, sync: false });
  return build(level, dest, () => {
    try {
      dest.flushSync();
    } catch {
      // Nothing buffered, or stdout is gone: either way there is nothing left to save.
    }
  });
}

// JSON lines to a function: tests capture what the server logs.
export function jsonLogger(level: LogLevel, write: Write = (l) => process.stdout.write(l)): LogHandle {
  return build(level, { write }, () => {});
}
