// Maps a position in a compiled file back to its source through the inline source map that
// esbuild writes into dist/latchkey.mjs, so that a profile of the compiled server names
// src/... files as a profile of the sources did.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface Original {
  readonly file: string;
  // 0-based, as V8's call frames count.
  readonly line: number;
}

// Per generated line: segments of [generated column, source index, source line].
type Lines = readonly (readonly [number, number, number])[][];

interface Decoded {
  readonly sources: readonly string[];
  readonly lines: Lines;
}

const base64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Base64 VLQ, as the source map format (revision 3) encodes each field.
function vlqFields(segment: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of segment) {
    const digit = base64.indexOf(ch);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    out.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0;
    shift = 0;
  }
  return out;
}

function decode(mappings: string): Lines {
  const lines: [number, number, number][][] = [];
  // Source index and line carry over from segment to segment and line to line; the column
  // starts again at each line.
  let source = 0;
  let sourceLine = 0;
  for (const text of mappings.split(";")) {
    const segments: [number, number, number][] = [];
    let column = 0;
    for (const segment of text.split(",")) {
      if (segment === "") continue;
      const f = vlqFields(segment);
      column += f[0] ?? 0;
      if (f.length < 4) continue;
      source += f[1] ?? 0;
      sourceLine += f[2] ?? 0;
      segments.push([column, source, sourceLine]);
    }
    lines.push(segments);
  }
  return lines;
}

const cache = new Map<string, Decoded | null>();

function mapOf(path: string): Decoded | null {
  if (cache.has(path)) return cache.get(path) ?? null;
  let decoded: Decoded | null = null;
  try {
    const text = readFileSync(path, "utf8");
    const m = /\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/.exec(text);
    if (m?.[1]) {
      const map = JSON.parse(Buffer.from(m[1], "base64").toString("utf8")) as {
        sources: string[];
        mappings: string;
      };
      const dir = dirname(path);
      decoded = { sources: map.sources.map((s) => resolve(dir, s)), lines: decode(map.mappings) };
    }
  } catch {
    decoded = null;
  }
  cache.set(path, decoded);
  return decoded;
}

// The source position of a 0-based line and column in a file:// URL or path, or null when the
// file carries no inline source map (or no longer exists).
export function originalPosition(url: string, line: number, column: number): Original | null {
  if (!url.endsWith(".mjs") && !url.endsWith(".js")) return null;
  const map = mapOf(url.startsWith("file://") ? fileURLToPath(url) : url);
  const segments = map?.lines[line];
  if (!map || !segments || segments.length === 0) return null;
  let best = segments[0]!;
  for (const s of segments) {
    if (s[0] > column) break;
    best = s;
  }
  const file = map.sources[best[1]];
  return file === undefined ? null : { file, line: best[2] };
}
