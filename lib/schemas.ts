// zod primitives every service's configuration (and wire format) shares, so an address, an amount
// or a port means the same thing and fails with the same message everywhere.
import { getAddress, isAddress } from "viem";
import type { Address, Hex } from "viem";
import { z } from "zod";

/** A 0x-prefixed 20-byte address, checksummed on the way in. */
export const addressSchema = z
  .string()
  .refine(isAddress, "must be a 0x-prefixed 20-byte address")
  .transform((a): Address => getAddress(a));

/** Token amounts in wei: a decimal string (JSON has no big integers) or a safe whole number. */
export const weiSchema = z
  .union([z.string().regex(/^\d+$/, "must be a whole number of wei, as a decimal string"), z.number().int().nonnegative()])
  .transform((v) => BigInt(v));

/** 0x hex, of exactly `bytes` bytes when given. */
export const hexSchema = (bytes?: number) =>
  z
    .string()
    .regex(
      bytes === undefined ? /^0x[0-9a-fA-F]*$/ : new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`),
      bytes === undefined ? "must be 0x hex" : `must be ${bytes} bytes of 0x hex`,
    )
    .transform((s) => s as Hex);

/**
 * Where a signing key comes from: the environment variable `env` (default `defaultEnv`), or the
 * Hardhat keystore entry `keystore` (see lib/keys.ts). The key itself never sits in a config file.
 */
export const keySourceSchema = (defaultEnv: string) =>
  z
    .object({ env: z.string().min(1).default(defaultEnv), keystore: z.string().min(1).optional() })
    .strict()
    .default({ env: defaultEnv });

/** An http(s) URL. */
export const httpUrlSchema = z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" });

/** A TCP port; 0 lets the system pick a free one. */
export const portSchema = z.number().int().min(0).max(65535);

/** Where a service listens, with its default port. */
export const listenSchema = (defaultPort: number) =>
  z
    .object({ host: z.string().default("127.0.0.1"), port: portSchema.default(defaultPort) })
    .strict()
    .default({ host: "127.0.0.1", port: defaultPort });

/** A pino log level. */
export const logSchema = z
  .object({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info") })
  .strict()
  .default({ level: "info" });
