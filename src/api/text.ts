import { type DescMessage, type Message, ScalarType } from "@bufbuild/protobuf";
import { isReflectMessage, type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import { Code, ConnectError } from "@connectrpc/connect";

// Text no store can keep: PostgreSQL refuses NUL in text and jsonb, and an unpaired surrogate
// is no Unicode at all. This holds for every string of every request, whatever the field; the
// rules of a particular field (length, which characters) are the domain's (domain/input.ts).
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what is refused.
const unstorable = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function badString(m: ReflectMessage, path: string): string | null {
  for (const field of m.fields) {
    if (!m.isSet(field)) continue;
    const name = path === "" ? field.name : `${path}.${field.name}`;
    const found = (value: unknown): string | null => {
      if (typeof value === "string") return unstorable.test(value) ? name : null;
      if (isReflectMessage(value)) return badString(value, name);
      return null;
    };
    let bad: string | null = null;
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) bad = found(m.get(field));
    else if (field.fieldKind === "message") bad = found(m.get(field));
    else if (field.fieldKind === "list") {
      for (const v of m.get(field)) if (!bad) bad = found(v);
    } else if (field.fieldKind === "map") {
      for (const [k, v] of m.get(field)) if (!bad) bad = found(k) ?? found(v);
    }
    if (bad) return bad;
  }
  return null;
}

export function refuseUnstorableText(desc: DescMessage, message: Message): void {
  const field = badString(reflect(desc, message), "");
  if (field)
    throw new ConnectError(
      `${field} contains a NUL character or invalid Unicode, which Latchkey does not accept`,
      Code.InvalidArgument,
    );
}
