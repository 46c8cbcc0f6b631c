// The supervisor's watchdog: a separate process that outlives a parent killed by SIGKILL (which
// runs no exit handler) and then stops the process groups the parent left behind. The parent
// writes `+<pgid>` when a group starts and `-<pgid>` when it is gone; when its end of the pipe
// closes — the parent exited, however it died — every group still listed gets SIGTERM, then
// SIGKILL after a grace period. Run by `node devnet/watchdog.ts <graceMs>` (see supervisor.ts).
const graceMs = Number(process.argv[2] ?? "5000");
const groups = new Set<number>();
let pending = "";

function signalAll(signal: NodeJS.Signals): void {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, signal);
    } catch {
      groups.delete(pgid); // already gone
    }
  }
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
process.stdin.on("close", () => {
  if (groups.size === 0) process.exit(0);
  signalAll("SIGTERM");
  setTimeout(() => {
    signalAll("SIGKILL");
    process.exit(0);
  }, graceMs);
});
// The terminal's Ctrl-C reaches the whole foreground group: this process stays to clean up.
process.on("SIGINT", () => undefined);
process.on("SIGHUP", () => undefined);
