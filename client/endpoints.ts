import { backlogSeconds, backlogTrx } from '../core/backlog';
import { wsrepExclusion } from '../core/galera-route';
import type { GaleraOnline, MasterRecord } from '../core/records';
import { liveStatus, type Health } from './health';

/**
 * What the agent's HTTP endpoints answer (design §4, §11), pure: HAProxy's `option httpchk` asks
 * `GET /master?epoch=E&node=N` and `GET /replica?max_lag=S`; monitoring scrapes `GET /metrics`
 * (client/metrics.ts).
 */
export interface AgentSnapshot {
  readonly node: string;
  readonly group: string | null;
  readonly health: Health;
  /** master/<group> as last seen; null when absent or not read yet. */
  readonly master: MasterRecord | null;
  /** When the agent learnt the current master/ record (0 before any). */
  readonly masterSeenAt: number;
  /** When the live status was read (health.ts liveStatusAt); null without one. */
  readonly statusAt: number | null;
  /** From meta_group/<group>.settings; the default 30 until the record is read. */
  readonly maxReadLagSeconds: number;
  readonly zkConnected: boolean;
  readonly onlinePublished: boolean;
  readonly rejoinPending: boolean;
  /** mysqld is writable while ZooKeeper says it must not be (being fenced, or held: client/fence.ts decideStray). */
  readonly strayWritable: boolean;
  readonly counters: AgentCounters;
}

export interface AgentCounters {
  readonly checks: Readonly<Record<'ok' | 'refused' | 'dropped' | 'timeout' | 'error', number>>;
  readonly lastCheckMs: number;
  readonly onlineWrites: number;
  readonly selfFences: number;
  readonly failsafeHolds: number;
  /** Fences of a writable node that ZooKeeper says is not the master (decideStray). */
  readonly strayFences: number;
  readonly sessions: number;
  readonly expiries: number;
  /** wsrep_notify_cmd events received (`mha client notify`, Galera nodes). */
  readonly wsrepNotifies?: number;
}

export interface EndpointAnswer {
  readonly status: 200 | 400 | 503;
  readonly body: string;
  /**
   * A 503 that may turn into a 200 within moments without anything else changing: the check asks
   * for an epoch this agent has not seen yet, or master/ names this node but the last mysqld check
   * predates its promotion. The HTTP layer waits (bounded) for the next record or check and asks
   * again, so HAProxy's first check after a route change does not take the new master out.
   */
  readonly retry?: boolean;
}

/** What HAProxy's check asks for (the router renders it): `/master?epoch=E&node=N`. */
export interface MasterExpectation {
  /** The epoch of the route the router applied; 200 only at exactly this epoch. */
  readonly epoch?: number;
  /** The node the router routes to through this check; 503 when the check reached another agent. */
  readonly node?: string;
}

/**
 * 200 only when this node is the master in master/<group>, at the epoch the router configured when
 * it asks for one (the epoch as a fencing token: a router still on an older route, cut off from
 * ZooKeeper, is refused by the agent of the master it routes to), and its mysqld is alive, writable
 * and not replicating.
 */
export function masterCheck(s: AgentSnapshot, want: MasterExpectation = {}): EndpointAnswer {
  if (want.node !== undefined && want.node !== s.node)
    return { status: 503, body: `this is the agent of ${s.node}, not of ${want.node}\n` };
  const st = liveStatus(s.health);
  if (st === null) return { status: 503, body: `mysqld not healthy (${s.health.kind})\n` };
  if (s.master === null)
    return { status: 503, body: 'master record unknown\n', retry: want.epoch !== undefined };
  if (want.epoch !== undefined && s.master.epoch < want.epoch)
    return { status: 503, body: `epoch ${want.epoch} not seen yet (at ${s.master.epoch})\n`, retry: true };
  if (want.epoch !== undefined && s.master.epoch > want.epoch)
    return { status: 503, body: `epoch ${want.epoch} is over (master/ is at ${s.master.epoch})\n` };
  if (s.master.node !== s.node) return { status: 503, body: `not the master (master is ${s.master.node})\n` };
  // Named by master/ but the last check still saw a replica: a promotion the checks have not
  // caught up with (the agent checks again at once when master/ names it).
  const stale = (s.statusAt ?? 0) < s.masterSeenAt;
  if (st.readOnly) return { status: 503, body: 'master but read_only=ON\n', retry: stale };
  if (st.replica !== null && (st.replica.ioRunning || st.replica.sqlRunning))
    return { status: 503, body: 'master but replicating\n', retry: stale };
  if (st.galera !== undefined && galeraNotServing(st.galera) !== null)
    return { status: 503, body: `galera writer but ${galeraNotServing(st.galera)}\n` };
  return { status: 200, body: `master epoch ${s.master.epoch}\n` };
}

/** Parses `/master`'s query; null (400) for a malformed one. */
export function masterExpectation(q: URLSearchParams): MasterExpectation | null {
  const e = q.get('epoch');
  const n = q.get('node');
  if (e !== null && !/^\d{1,15}$/.test(e)) return null;
  if (n !== null && (n.length === 0 || n.length > 300)) return null;
  return { ...(e !== null ? { epoch: Number(e) } : {}), ...(n !== null ? { node: n } : {}) };
}

/**
 * 200 when this node replicates with its SQL thread running, its IO thread running or retrying
 * (a master that died: the lag then is a bound, health.ts boundLag), and its lag known and within
 * `maxLag` (the check's `max_lag`, else the group's maxReadLagSeconds).
 */
export function replicaCheck(s: AgentSnapshot, maxLag: number = s.maxReadLagSeconds): EndpointAnswer {
  const st = liveStatus(s.health);
  if (st === null) return { status: 503, body: `mysqld not healthy (${s.health.kind})\n` };
  // A Galera node serves reads while it is a Synced, ready member of a Primary Component.
  if (st.galera !== undefined) {
    const why = galeraNotServing(st.galera);
    return why === null
      ? { status: 200, body: 'galera Synced, Primary\n' }
      : { status: 503, body: `${why}\n` };
  }
  const r = st.replica;
  if (r === null) return { status: 503, body: 'not a replica\n' };
  const io = r.ioRunning || r.ioConnecting === true;
  if (!io || !r.sqlRunning)
    return { status: 503, body: `replication stopped (io=${r.ioRunning} sql=${r.sqlRunning})\n` };
  if (r.lagSeconds === null) return { status: 503, body: 'lag unknown\n' };
  if (r.lagSeconds > maxLag) return { status: 503, body: `lag ${r.lagSeconds}s > ${maxLag}s\n` };
  // Seconds_Behind_Master stays low while received transactions wait unapplied (core/backlog).
  const trx = backlogTrx(r.gtidIo, st.gtidSlave);
  const secs = trx !== null ? backlogSeconds(trx, r.applyRate?.rate ?? null) : null;
  if (secs !== null && secs > maxLag)
    return { status: 503, body: `apply backlog ${trx} transactions (~${secs}s) > ${maxLag}s\n` };
  return { status: 200, body: `replica lag ${r.lagSeconds}s${r.ioRunning ? '' : ' (master unreachable)'}\n` };
}

/** Why a Galera node must not serve (core/galera-route's rule), or null. */
function galeraNotServing(g: GaleraOnline): string | null {
  const why = wsrepExclusion(g);
  if (why === null) return null;
  return `${why}: wsrep ${g.clusterStatus}, ${g.localStateComment || `state ${g.localState}`}${g.ready ? '' : ', not ready'}`;
}

/** Parses `/replica`'s `max_lag`; undefined when absent, null (400) when malformed. */
export function replicaMaxLag(q: URLSearchParams): number | undefined | null {
  const v = q.get('max_lag');
  if (v === null) return undefined;
  return /^\d{1,9}(\.\d{1,3})?$/.test(v) ? Number(v) : null;
}
