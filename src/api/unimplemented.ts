import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";

// The methods of a service Latchkey does not serve, each answering Unimplemented on purpose.
// Listing them by name keeps the service typed whole: a method neither built nor listed here
// is a compile error.
// The handlers made here, so that tests can tell the methods Latchkey serves from the others.
export const unimplementedHandlers = new WeakSet<object>();

export function unimplemented<S extends DescService, K extends keyof ServiceImpl<S> & string>(
  service: S,
  names: readonly K[],
): Pick<ServiceImpl<S>, K> {
  const impl: Record<string, () => never> = {};
  for (const name of names) {
    const handler = () => {
      throw new ConnectError(
        `${service.typeName} method ${name} is not implemented by Latchkey`,
        Code.Unimplemented,
      );
    };
    unimplementedHandlers.add(handler);
    impl[name] = handler;
  }
  return impl as unknown as Pick<ServiceImpl<S>, K>;
}

// For a service of which Latchkey serves a handful of methods out of hundreds (ZITADEL's v1
// management API): the given methods, and Unimplemented for every other one.
export function unimplementedExcept<S extends DescService>(
  service: S,
  implemented: Partial<ServiceImpl<S>>,
): ServiceImpl<S> {
  const rest = service.methods
    .map((m) => m.localName)
    .filter((name) => !(name in implemented)) as (keyof ServiceImpl<S> & string)[];
  return { ...unimplemented(service, rest), ...implemented } as ServiceImpl<S>;
}
