import type { GroupView } from '../core/view';

/**
 * Read-pool upkeep (design §5, "Read pool"): which replicas `haproxy/<group>.read` should list.
 * Pure: a function of the snapshot, of direct probes of replicas whose heartbeat vanished, and of
 * how long each replica has been seen healthy (hysteresis: a replica leaves at once, comes back
 * only after being healthy for `returnAfterMs`).
 */

/** A direct check of a replica whose online/ node is missing. */
export type ReplicaProbe =
  | { readonly kind: 'down'; readonly error: string }
  | {
      readonly kind: 'answering';
      readonly masterNode: string | null;
      readonly ioRunning: boolean;
      readonly sqlRunning: boolean;
      readonly lagSeconds: number | null;
    };

export interface ReadPoolObservations {
  readonly now: number;
  /** Probes of replicas without online/ (taken after their node vanished). */
  readonly probes: ReadonlyMap<string, ReplicaProbe>;
  /** Since when each replica has been seen healthy without interruption (worker memory). */
  readonly healthySince: ReadonlyMap<string, number>;
  readonly returnAfterMs: number;
}

export type ReplicaHealth =
  { readonly healthy: true } | { readonly healthy: false; readonly why: string; readonly probe?: 'needed' };

export interface ReadPoolPlan {
  /** The read list the route should carry (member order). */
  readonly read: readonly string[];
  /** Replicas leaving the pool now, with why (each gets a slave_down/ entry). */
  readonly remove: ReadonlyArray<{ readonly node: string; readonly reason: string }>;
  /** Replicas out of the pool that have no slave_down/ entry yet (entry only, the route is unchanged for them). */
  readonly mark: ReadonlyArray<{ readonly node: string; readonly reason: string }>;
  /** Replicas coming back, or in the pool with a stale entry (their slave_down/ entry is deleted). */
  readonly add: readonly string[];
  /** Replicas to probe directly before a decision about them can be made. */
  readonly needsProbe: readonly string[];
  /** Per replica health as judged now (for the worker's healthySince bookkeeping). */
  readonly health: ReadonlyMap<string, ReplicaHealth>;
  /** Earliest time a healthy replica waiting on hysteresis may return (to schedule a re-check). */
  readonly recheckAt: number | null;
  /** True when the route or any slave_down/ entry must change. */
  readonly changed: boolean;
}

function judge(
  view: GroupView,
  node: string,
  master: string,
  probes: ReadonlyMap<string, ReplicaProbe>,
): ReplicaHealth {
  const m = view.members.find((x) => x.node === node)!;
  const maxLag = view.meta?.settings.maxReadLagSeconds ?? 30;
  if (m.rejoin !== null) return { healthy: false, why: 'rejoin pending' };
  let state: {
    masterNode: string | null | undefined;
    ioRunning: boolean | undefined;
    ioConnecting?: boolean | undefined;
    sqlRunning: boolean | undefined;
    lagSeconds: number | null | undefined;
    role?: string;
    /** Estimated seconds to apply what it received (heartbeat only, core/backlog). */
    backlogSeconds?: number | null | undefined;
    backlogTrx?: number | undefined;
  };
  // A heartbeat record older than the current master, or naming another master, predates the last
  // master change (the agent has not republished yet): ask the replica itself instead of trusting it.
  const since = view.master?.record.since ?? 0;
  const stale =
    m.online !== null &&
    (m.online.at < since || (m.online.masterNode !== undefined && m.online.masterNode !== master));
  if (m.online !== null && !stale) {
    state = {
      masterNode: m.online.masterNode,
      ioRunning: m.online.ioRunning,
      ioConnecting: m.online.ioConnecting,
      sqlRunning: m.online.sqlRunning,
      lagSeconds: m.online.lagSeconds,
      role: m.online.role,
      backlogSeconds: m.online.backlogSeconds,
      backlogTrx: m.online.backlogTrx,
    };
    if (m.online.role !== 'replica') return { healthy: false, why: `role is ${m.online.role}, not replica` };
  } else {
    const p = probes.get(node);
    if (p === undefined)
      return {
        healthy: false,
        why: stale ? 'heartbeat record predates the master change' : 'heartbeat lost',
        probe: 'needed',
      };
    if (p.kind === 'down') return { healthy: false, why: `down: ${p.error}` };
    state = p;
  }
  // With the master's heartbeat gone every replica's IO thread loses its master; that says
  // nothing about the replica (its data is as fresh as it can be), and dropping the whole pool
  // would fail every read while the failover runs. Only a stopped SQL thread counts then.
  // The same holds while the master's heartbeat is still there but its host is dead (until its
  // session expires): an IO thread that keeps retrying ('Connecting') says the master is gone, not
  // that this replica is broken; the agent bounds its lag by the time since the IO thread last ran.
  const masterOnline = view.members.find((x) => x.node === master)?.online != null;
  const ioOk = state.ioRunning === true || state.ioConnecting === true || !masterOnline;
  if (!ioOk || state.sqlRunning !== true)
    return {
      healthy: false,
      why: `replication stopped (IO ${state.ioRunning ? 'running' : 'stopped'}, SQL ${state.sqlRunning ? 'running' : 'stopped'})`,
    };
  if (state.masterNode !== undefined && state.masterNode !== null && state.masterNode !== master)
    return { healthy: false, why: `replicates from ${state.masterNode}, not the master ${master}` };
  if (state.lagSeconds !== undefined && state.lagSeconds !== null && state.lagSeconds > maxLag)
    return { healthy: false, why: `lag ${state.lagSeconds}s > ${maxLag}s` };
  // Seconds_Behind_Master stays low while received transactions pile up unapplied (field notes):
  // the apply backlog bounds how stale its reads are too.
  if (typeof state.backlogSeconds === 'number' && state.backlogSeconds > maxLag)
    return {
      healthy: false,
      why: `apply backlog ${state.backlogTrx ?? '?'} transactions (~${state.backlogSeconds}s) > ${maxLag}s`,
    };
  return { healthy: true };
}

export function planReadPool(view: GroupView, obs: ReadPoolObservations): ReadPoolPlan | null {
  const master = view.master?.record.node;
  const route = view.route?.record;
  if (master === undefined || route === undefined || view.meta === null) return null;
  const inPool = new Set(route.read);
  const health = new Map<string, ReplicaHealth>();
  const read: string[] = [];
  const remove: Array<{ node: string; reason: string }> = [];
  const mark: Array<{ node: string; reason: string }> = [];
  const add: string[] = [];
  const needsProbe: string[] = [];
  let recheckAt: number | null = null;

  for (const m of view.members) {
    if (m.node === master) continue;
    const h = judge(view, m.node, master, obs.probes);
    health.set(m.node, h);
    const drained = m.slaveDown?.record.drained === true;
    if (!h.healthy && h.probe === 'needed') {
      needsProbe.push(m.node);
      // Undecided until probed: keep the current state.
      if (inPool.has(m.node)) read.push(m.node);
      continue;
    }
    if (inPool.has(m.node)) {
      if (drained) remove.push({ node: m.node, reason: m.slaveDown!.record.reason });
      else if (!h.healthy) remove.push({ node: m.node, reason: h.why });
      else read.push(m.node);
      continue;
    }
    // Out of the pool.
    if (drained) continue; // an operator's drain: only `mha undrain` brings it back
    if (!h.healthy) {
      if (m.slaveDown === null) mark.push({ node: m.node, reason: h.why });
      continue;
    }
    const since = obs.healthySince.get(m.node) ?? obs.now;
    const returnAt = since + obs.returnAfterMs;
    if (obs.now >= returnAt) {
      read.push(m.node);
      add.push(m.node);
    } else {
      recheckAt = recheckAt === null ? returnAt : Math.min(recheckAt, returnAt);
    }
  }
  // Nodes in the route that are no longer members (removehost) or are the master just leave it
  // (they are not replicas of this group, so they get no slave_down/ entry).
  // Stale entries: a member in the pool should not carry a non-drain slave_down entry.
  for (const n of read) {
    const sd = view.slaveDown.get(n);
    if (sd !== undefined && sd.record.drained !== true && !add.includes(n)) add.push(n);
  }
  const sameRead = read.length === route.read.length && read.every((n) => inPool.has(n));
  const changed = !sameRead || remove.length > 0 || mark.length > 0 || add.length > 0;
  return { read, remove, mark, add, needsProbe, health, recheckAt, changed };
}
