import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { h } from "./dom.ts";
import { when } from "./format.ts";
import type { Problem } from "./problems.ts";

export function problemBox(p: Problem): HTMLElement {
  return h(
    "div",
    { class: "problem", role: "alert" },
    h("p", { class: "problem-title" }, p.title),
    h("p", {}, p.detail),
    p.server ? h("p", { class: "server" }, "Server: ", h("code", {}, p.server)) : null,
  );
}

// What every write answers: the sequence of the event it wrote and that event's time.
export function doneBox(text: string, details?: { sequence: bigint; changeDate?: Timestamp }): HTMLElement {
  const at = details?.changeDate ? when(timestampDate(details.changeDate)) : null;
  return h(
    "div",
    { class: "done", role: "status" },
    h("p", {}, text),
    details ? h("p", { class: "meta" }, `Sequence ${details.sequence}`, at ? `, ${at}` : "", ".") : null,
  );
}

export function badge(ok: boolean, yes: string, no: string): HTMLElement {
  return h("span", { class: ok ? "badge ok" : "badge warn" }, ok ? yes : no);
}

export function timeOf(value: Date | string): HTMLElement {
  const d = typeof value === "string" ? new Date(value) : value;
  return h("time", { datetime: d.toISOString() }, when(d));
}

// Marks a button busy while its request runs, so that it cannot be sent twice.
export async function busy<T>(button: HTMLButtonElement, work: () => Promise<T>): Promise<T> {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
