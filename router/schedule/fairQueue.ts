// Start-time fair queueing (Goyal, Vin and Cheng, SIGCOMM 1996) between tenants, within one
// priority class: each request gets a start tag max(V, the tenant's last finish tag) and a finish
// tag start + cost / weight, and the request with the smallest start tag goes next (V becomes its
// start tag). A tenant that sends ten thousand requests at once gets its weighted share, and a
// tenant that sends one is served after at most one request of each other tenant.
//
// Written here rather than taken from a library: the scheduler also needs to know how many
// queued requests a new one would have ahead of it (to predict its wait before queueing it),
// which no fair-queueing package on npm exposes. Per tenant, tags only grow, so that count is a
// binary search per tenant.

export interface FairEntry<T> {
  readonly item: T;
  readonly tenant: string;
  readonly start: number;
  readonly finish: number;
  /** Arrival order, to break ties between equal start tags. */
  readonly seq: number;
}

interface TenantQueue<T> {
  entries: Array<FairEntry<T>>;
  lastFinish: number;
}

export class FairQueue<T> {
  private readonly tenants = new Map<string, TenantQueue<T>>();
  private virtualTime = 0;
  private seq = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The tags a request of `tenant` would get if it were pushed now. */
  private tags(tenant: string, weight: number, cost: number): { start: number; finish: number } {
    const queue = this.tenants.get(tenant);
    const start = Math.max(this.virtualTime, queue?.lastFinish ?? 0);
    return { start, finish: start + cost / Math.max(weight, 1e-9) };
  }

  push(item: T, tenant: string, weight: number, cost: number): FairEntry<T> {
    const { start, finish } = this.tags(tenant, weight, cost);
    let queue = this.tenants.get(tenant);
    if (queue === undefined) {
      queue = { entries: [], lastFinish: 0 };
      this.tenants.set(tenant, queue);
    }
    const entry: FairEntry<T> = { item, tenant, start, finish, seq: this.seq++ };
    queue.entries.push(entry);
    queue.lastFinish = finish;
    this.count += 1;
    return entry;
  }

  /** How many queued requests would go before one of `tenant` pushed now. */
  aheadOfNew(tenant: string, weight: number, cost: number): number {
    const { start } = this.tags(tenant, weight, cost);
    let ahead = 0;
    for (const [name, queue] of this.tenants) {
      // Own requests all go first; others' go first when their start tag is not later (ties by arrival).
      ahead += name === tenant ? queue.entries.length : countAtOrBelow(queue.entries, start);
    }
    return ahead;
  }

  /** The next request in fair order, without removing it. */
  peek(): FairEntry<T> | undefined {
    let best: FairEntry<T> | undefined;
    for (const queue of this.tenants.values()) {
      const head = queue.entries[0];
      if (head !== undefined && (best === undefined || head.start < best.start || (head.start === best.start && head.seq < best.seq)))
        best = head;
    }
    return best;
  }

  /** Removes and returns the next request in fair order, advancing virtual time to its start tag. */
  pop(): FairEntry<T> | undefined {
    const best = this.peek();
    if (best === undefined) return undefined;
    this.remove(best);
    this.virtualTime = Math.max(this.virtualTime, best.start);
    return best;
  }

  /** The request that would be served last (the one to give up first when space is needed). */
  last(): FairEntry<T> | undefined {
    let worst: FairEntry<T> | undefined;
    for (const queue of this.tenants.values()) {
      const tail = queue.entries.at(-1);
      if (tail !== undefined && (worst === undefined || tail.start > worst.start || (tail.start === worst.start && tail.seq > worst.seq)))
        worst = tail;
    }
    return worst;
  }

  /** Removes `entry` (cancelled, expired or evicted); false when it was not queued. */
  remove(entry: FairEntry<T>): boolean {
    const queue = this.tenants.get(entry.tenant);
    if (queue === undefined) return false;
    const index = queue.entries[0] === entry ? 0 : queue.entries.indexOf(entry);
    if (index < 0) return false;
    queue.entries.splice(index, 1);
    this.count -= 1;
    // An idle tenant's last finish tag no longer matters once virtual time passes it.
    if (queue.entries.length === 0 && queue.lastFinish <= this.virtualTime) this.tenants.delete(entry.tenant);
    return true;
  }

  /** Every queued request (any order). */
  *entries(): Generator<FairEntry<T>> {
    for (const queue of this.tenants.values()) yield* queue.entries;
  }
}

/** Entries (sorted by start tag) whose start tag is at or below `start`. */
function countAtOrBelow<T>(entries: ReadonlyArray<FairEntry<T>>, start: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid]!.start <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
