// The supervisor's watchdog: a separate process that outlives a parent killed by SIGKILL (which
// runs no exit handler) and then stops the process groups the parent left behind. The parent
// writes `+<pgid>` when a group starts and `-<pgid>` when it is gone; when its end of the pipe
// closes — the parent exited, however it died — the groups still listed are stopped as the
// supervisor would have: last started first, each with SIGTERM, then SIGKILL after `graceMs` (so an
// edge can still redeem its vouchers through the node, which goes last). Run by
// `node devnet/watchdog.ts <graceMs>` (see supervisor.ts).
const graceMs = Number(process.argv[2] ?? "5000");
/** Live groups in start order (a Set keeps insertion order). */
const groups = new Set<number>();
let pending = "";

function alive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopGroup(pgid: number): Promise<void> {
  try {
    process.kill(-pgid, "SIGTERM");
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + graceMs;
  while (alive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pgid)) process.kill(-pgid, "SIGKILL");
}

process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk: string) => {
  pending += chunk;
  const lines = pending.split("\n");
  pending = lines.pop() ?? "";
  for (const line of lines) {
    const pgid = Number(line.slice(1));
    if (!Number.isInteger(pgid) || pgid <= 0) continue;
    if (line.startsWith("+")) groups.add(pgid);
    else if (line.startsWith("-")) groups.delete(pgid);
  }
});
process.stdin.on("close", async () => {
  for (const pgid of [...groups].reverse()) await stopGroup(pgid);
  process.exit(0);
});
// The terminal's Ctrl-C or hang-up must not stop the one process left to clean up.
process.on("SIGINT", () => undefined);
process.on("SIGHUP", () => undefined);
