import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";

// The methods of a service Latchkey does not serve, each answering Unimplemented on purpose.
// Listing them by name keeps the service typed whole: a method neither built nor listed here
// is a compile error.
export function unimplemented<S extends DescService, K extends keyof ServiceImpl<S> & string>(
  service: S,
  names: readonly K[],
): Pick<ServiceImpl<S>, K> {
  const impl: Record<string, () => never> = {};
  for (const name of names) {
    impl[name] = () => {
      throw new ConnectError(
        `${service.typeName} method ${name} is not implemented by Latchkey`,
        Code.Unimplemented,
      );
    };
  }
  return impl as unknown as Pick<ServiceImpl<S>, K>;
}
