// The `edge` tasks for token holders and operators (`npx hardhat edge --help`). Definitions only:
// each action is imported lazily when its task runs, so loading the config stays fast.
// Every task takes `--network <name>` (Hardhat's) and, when it sends transactions,
// `--from <index>` to pick the signer among the network's accounts (default 0).
import { emptyTask, task } from "hardhat/config";
import { ArgumentType } from "hardhat/types/arguments";
import type { TaskDefinition } from "hardhat/types/tasks";

const FROM = {
  name: "from",
  description: "Index of the signing account among the network's accounts",
  type: ArgumentType.INT,
  defaultValue: 0,
} as const;
const EDGE_ID = { name: "edgeId", description: "The edge's id", type: ArgumentType.BIGINT } as const;

export const tasks: TaskDefinition[] = [
  emptyTask("edge", "Tideway edges: register, stake, delegate, unbond, withdraw, claim, inspect").build(),

  task(["edge", "register"], "Register an edge operated by the signer (allowlisted operators only, in the trusted phase)")
    .addOption({
      name: "signingKey",
      description:
        "Address of the key the edge signs challenge answers with (never used before; default: the key in TIDEWAY_EDGE_SIGNING_KEY)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "keySignature",
      description: "The key's EIP-712 SigningKeyClaim for your operator address; omit it to sign with TIDEWAY_EDGE_SIGNING_KEY",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "endpoint",
      description: "Public HTTPS endpoint of the edge's OpenAI-compatible API",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "region",
      description: "Region code, e.g. eu-west",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({ name: "capacity", description: "Declared capacity in output tokens per second", type: ArgumentType.INT, defaultValue: 0 })
    .addOption({
      name: "models",
      description: "Served models, comma-separated",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "metadataUri",
      description: "Where further operator metadata lives (optional)",
      type: ArgumentType.STRING,
      defaultValue: "",
    })
    .addOption(FROM)
    .setAction(() => import("./actions/register.ts"))
    .build(),

  task(["edge", "stake"], "Add to your self-bond in an edge you operate (approves the tokens first if needed)")
    .addPositionalArgument(EDGE_ID)
    .addPositionalArgument({ name: "amount", description: "Tokens, e.g. 1000 or 0.5" })
    .addOption(FROM)
    .setAction(() => import("./actions/stake.ts"))
    .build(),

  task(["edge", "delegate"], "Delegate tokens to an edge (approves the tokens first if needed)")
    .addPositionalArgument(EDGE_ID)
    .addPositionalArgument({ name: "amount", description: "Tokens, e.g. 1000 or 0.5" })
    .addOption(FROM)
    .setAction(() => import("./actions/delegate.ts"))
    .build(),

  task(["edge", "unbond"], "Start unbonding earning stake: it stops earning now and stays slashable until it matures")
    .addPositionalArgument(EDGE_ID)
    .addPositionalArgument({ name: "amount", description: 'Tokens, e.g. 400 or 0.5, or "all"' })
    .addOption(FROM)
    .setAction(() => import("./actions/unbond.ts"))
    .build(),

  task(["edge", "withdraw"], "Withdraw matured unbonding entries")
    .addPositionalArgument(EDGE_ID)
    .addPositionalArgument({
      name: "index",
      description: 'An unbonding entry index, "self-bond" (an operator\'s unbonded self-bond), or "all" for every matured one',
      defaultValue: "all",
    })
    .addOption(FROM)
    .setAction(() => import("./actions/withdraw.ts"))
    .build(),

  task(["edge", "set-commission"], "Schedule a new commission for an edge you operate (applies after the commission delay)")
    .addPositionalArgument(EDGE_ID)
    .addPositionalArgument({ name: "rate", description: "Percent (5%, 12.5%, or a bare 5) or basis points (500bps)" })
    .addOption(FROM)
    .setAction(() => import("./actions/set-commission.ts"))
    .build(),

  task(["edge", "unjail"], "End the jail of an edge you operate, once its jail period is over")
    .addPositionalArgument(EDGE_ID)
    .addOption(FROM)
    .setAction(() => import("./actions/unjail.ts"))
    .build(),

  task(["edge", "claim"], "Claim your rewards (and commission, for the operator) in an edge")
    .addPositionalArgument(EDGE_ID)
    .addOption({ name: "to", description: "Receiver of the rewards (default: the signer)", type: ArgumentType.STRING, defaultValue: "" })
    .addOption(FROM)
    .setAction(() => import("./actions/claim.ts"))
    .build(),

  task(["edge", "show"], "Show an edge: registry record, status, self-bond, stake, commission, jail")
    .addPositionalArgument(EDGE_ID)
    .setAction(() => import("./actions/show.ts"))
    .build(),

  task(["edge", "position"], "Show a position in an edge: earning, warming up, rewards, unbonding entries")
    .addPositionalArgument(EDGE_ID)
    .addOption({
      name: "account",
      description: "Whose position (default: the --from account)",
      type: ArgumentType.STRING,
      defaultValue: "",
    })
    .addOption(FROM)
    .setAction(() => import("./actions/position.ts"))
    .build(),

  task(["edge", "approve"], "Set the staking contract's allowance over your tokens (stake and delegate do this by themselves)")
    .addPositionalArgument({ name: "amount", description: 'Tokens, e.g. 1000, "max" for unlimited, or 0 to revoke' })
    .addOption(FROM)
    .setAction(() => import("./actions/approve.ts"))
    .build(),

  emptyTask("verifier", "Tideway verifiers: register, inspect").build(),

  task(
    ["verifier", "register"],
    "Register a verifier operated by the signer, bonding tokens (Pending until governance approves it in the trusted phase)",
  )
    .addOption({
      name: "endpoint",
      description: "HTTP endpoint where peer verifiers reach this verifier",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "bond",
      description: "Tokens to bond (default: the minimum bond)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "signingKey",
      description:
        "Address of the key the verifier signs attestations with (never used before; default: the key in TIDEWAY_VERIFIER_SIGNING_KEY)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "keySignature",
      description: "The key's EIP-712 VerifierKeyClaim for your operator address; omit it to sign with TIDEWAY_VERIFIER_SIGNING_KEY",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption(FROM)
    .setAction(() => import("./actions/verifier-register.ts"))
    .build(),

  task(["verifier", "show"], "Show the verifier set (quorum, phase, every verifier) or one verifier")
    .addPositionalArgument({
      name: "verifierId",
      description: "A verifier's id (default: all of them)",
      type: ArgumentType.STRING,
      defaultValue: "",
    })
    .setAction(() => import("./actions/verifier-show.ts"))
    .build(),

  emptyTask("epoch", "Tideway epoch settlement: status, reward claims").build(),

  task(["epoch", "status"], "Show an epoch's settlement (attestation, finality, emission, claims), or the current epoch and inflation")
    .addOption({
      name: "epoch",
      description: "The epoch (default: the current epoch and inflation)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .setAction(() => import("./actions/epoch-status.ts"))
    .build(),

  task(["epoch", "claim"], "Claim every edge's reward of a final epoch from the verifiers' results file (skips edges already claimed)")
    .addOption({
      name: "epoch",
      description: "The epoch (must match the file's; default: the file's)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "results",
      description: "The epoch's results file: JSON {epoch, root, totalWeight, results: [{edgeId, stake, quality}]}",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({ name: "batch", description: "Claims per transaction", type: ArgumentType.INT, defaultValue: 50 })
    .addOption(FROM)
    .setAction(() => import("./actions/epoch-claim.ts"))
    .build(),

  emptyTask("dapp", "Tideway dApps: escrow, voucher signers and sessions in the ComputeMarket").build(),

  task(["dapp", "deposit"], "Add tokens to a dApp's escrow (approves the market first if needed)")
    .addPositionalArgument({ name: "amount", description: "Tokens, e.g. 1000 or 0.5" })
    .addOption({ name: "payer", description: "Whose escrow to fund (default: the signer)", type: ArgumentType.STRING, defaultValue: "" })
    .addOption(FROM)
    .setAction(() => import("./actions/dapp-deposit.ts"))
    .build(),

  task(["dapp", "authorize-signer"], "Let a key (e.g. a gateway's hot key) sign vouchers on your escrow")
    .addPositionalArgument({ name: "signer", description: "The key's address" })
    .addOption(FROM)
    .setAction(() => import("./actions/dapp-authorize-signer.ts"))
    .build(),

  task(
    ["dapp", "revoke-signer"],
    "Withdraw a key's authority at once (its vouchers for earlier sessions still redeem for one thawing period)",
  )
    .addPositionalArgument({ name: "signer", description: "The key's address" })
    .addOption(FROM)
    .setAction(() => import("./actions/dapp-revoke-signer.ts"))
    .build(),

  task(["dapp", "open-session"], "Open a session paid from your escrow (edges learn of it from its event)")
    .addOption({
      name: "model",
      description: "The model the session is served with",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "budget",
      description: "The most its vouchers may take in total, in tokens",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "expiry",
      description: "When edges stop serving it: unix seconds, or a duration from now (30m, 2h, 1d)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption(FROM)
    .setAction(() => import("./actions/dapp-open-session.ts"))
    .build(),

  task(["dapp", "close-session"], "Close one of your sessions (vouchers for what was served still redeem)")
    .addPositionalArgument({ name: "sessionId", description: "The session's id" })
    .addOption(FROM)
    .setAction(() => import("./actions/dapp-close-session.ts"))
    .build(),

  task(["dapp", "thaw"], "Start thawing part of your escrow to withdraw it after the thawing period (replaces a thaw in progress)")
    .addPositionalArgument({ name: "amount", description: 'Tokens, "all", or 0 to cancel the thaw' })
    .addOption(FROM)
    .setAction(() => import("./actions/dapp-thaw.ts"))
    .build(),

  task(["dapp", "withdraw"], "Withdraw your thawed tokens once the thawing period is over")
    .addOption({ name: "to", description: "Receiver (default: the signer)", type: ArgumentType.STRING, defaultValue: "" })
    .addOption(FROM)
    .setAction(() => import("./actions/dapp-withdraw.ts"))
    .build(),

  task(["dapp", "show"], "Show a dApp's escrow, thaw, authorized signers and sessions")
    .addOption({ name: "account", description: "Whose (default: the --from account)", type: ArgumentType.STRING, defaultValue: "" })
    .addOption(FROM)
    .setAction(() => import("./actions/dapp-show.ts"))
    .build(),
];
