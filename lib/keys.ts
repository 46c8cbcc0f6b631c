// A service's signing key (the edge's, the verifier's, the verifier's challenge payer): from an
// environment variable, or from the Hardhat keystore (`npx hardhat keystore set <NAME>`). The key
// leaves this module only as a viem account, or as a {SigningKey} for services that sign with the
// native secp256k1 addon (thousands of signatures a second); it is never logged.
import { isHex } from "viem";
import type { Hex, LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";

/** No key could be found, or it is not a private key. The message says where to put one. */
export class SigningKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SigningKeyError";
  }
}

/** A loaded key: the viem account, and the raw key for native signing. */
export interface SigningKey {
  account: LocalAccount;
  privateKey: Hex;
}

function toKey(value: string, source: string): SigningKey {
  const key = (value.startsWith("0x") ? value : `0x${value}`) as Hex;
  if (!isHex(key) || key.length !== 66) {
    throw new SigningKeyError(`${source} does not hold a private key (expected 32 bytes of hex)`);
  }
  try {
    return { account: privateKeyToAccount(key), privateKey: key };
  } catch {
    throw new SigningKeyError(`${source} does not hold a valid secp256k1 private key`);
  }
}

export interface LoadKeyOptions {
  envName: string;
  keystoreName?: string;
  env?: NodeJS.ProcessEnv;
  /** What the key is, for the error messages (default "the edge's registered signing key"). */
  what?: string;
  /** Where the configuration names the keystore entry (default `"key": { "keystore": … }`). */
  configField?: string;
}

/** The key of {loadKey}, as a viem account. */
export async function loadSigningKey(options: LoadKeyOptions): Promise<LocalAccount> {
  return (await loadKey(options)).account;
}

/**
 * Loads the signing key: the environment variable `envName` when set; otherwise, if
 * `keystoreName` is given, that entry of the Hardhat keystore (the development keystore
 * first, then the encrypted one, which asks for its password on the terminal).
 */
export async function loadKey(options: LoadKeyOptions): Promise<SigningKey> {
  const env = options.env ?? process.env;
  const fromEnv = env[options.envName];
  if (fromEnv !== undefined && fromEnv !== "") return toKey(fromEnv, `the environment variable ${options.envName}`);
  if (options.keystoreName === undefined) {
    throw new SigningKeyError(
      `no signing key: set the environment variable ${options.envName} to ${options.what ?? "the edge's registered signing key"}, ` +
        `or name a Hardhat keystore entry in the configuration (${options.configField ?? `"key": { "keystore": "${options.envName}" }`}) ` +
        `and store it with \`npx hardhat keystore set ${options.envName}\``,
    );
  }
  const name = options.keystoreName;
  // The keystore is a Hardhat plugin: resolve the entry through Hardhat's own configuration-
  // variable hooks, as `configVariable(name)` in a Hardhat config would be. The runtime holds the
  // keystore plugin only: the project's hardhat.config.ts needs Hardhat's TypeScript loader
  // (its task imports), which the services, running under plain Node, do not have.
  const { createHardhatRuntimeEnvironment } = await import("hardhat/hre");
  const { configVariable } = await import("hardhat/config");
  const { default: keystore } = await import("@nomicfoundation/hardhat-keystore");
  const hre = await createHardhatRuntimeEnvironment({ plugins: [keystore] });
  let value: string;
  try {
    value = await hre.hooks.runHandlerChain("configurationVariables", "fetchValue", [configVariable(name)], async (_context, variable) => {
      const v = env[variable.name];
      if (v === undefined || v === "")
        throw new SigningKeyError(`the Hardhat keystore has no entry ${name}: store it with \`npx hardhat keystore set ${name}\``);
      return v;
    });
  } catch (err) {
    if (err instanceof SigningKeyError) throw err;
    throw new SigningKeyError(`cannot read ${name} from the Hardhat keystore: ${(err as Error).message}`);
  }
  return toKey(value, `the Hardhat keystore entry ${name}`);
}
