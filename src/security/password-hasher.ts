import * as argon2 from "@node-rs/argon2";
import * as bcrypt from "@node-rs/bcrypt";
import type { PasswordHasher } from "../app/ports.ts";
import type { Argon2Config } from "../config.ts";

// @node-rs/argon2's Algorithm is a const enum, which an ESM loader cannot inline: 2 is Argon2id.
const argon2id = 2 as argon2.Algorithm;

// New passwords are hashed with argon2id; imported bcrypt hashes stay verifiable. Both
// libraries run the work on libuv's thread pool, so a hash never blocks the event loop, and
// compare in constant time.
export function passwordHasher(config: Argon2Config): PasswordHasher {
  const options: argon2.Options = {
    algorithm: argon2id,
    memoryCost: config.memoryKib,
    timeCost: config.iterations,
    parallelism: config.parallelism,
  };
  return {
    hash: (password) => argon2.hash(password, options),
    async verify(encodedHash, password) {
      try {
        if (encodedHash.startsWith("$argon2")) return await argon2.verify(encodedHash, password);
        if (/^\$2[aby]\$/.test(encodedHash)) return await bcrypt.verify(password, encodedHash);
        return false;
      } catch {
        // A hash the library cannot parse matches no password.
        return false;
      }
    },
    needsRehash(encodedHash) {
      if (!encodedHash.startsWith("$argon2id$")) return true;
      try {
        const p = argon2.parseOptions(encodedHash);
        return (
          p.memoryCost !== config.memoryKib ||
          p.timeCost !== config.iterations ||
          p.parallelism !== config.parallelism
        );
      } catch {
        return true;
      }
    },
  };
}
