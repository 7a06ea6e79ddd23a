import { receivedPos, errantTips, type ReachablePosition } from '../core/candidate';
import { formatGtid, formatGtidPos, gtidContains } from '../core/gtid';
import { errorMessage } from '../core/errors';
import type { AlertKind } from '../core/records';
import { member, alertOf, type GroupView } from '../core/view';

/**
 * Replicas that do not follow the master (issue 11, hole 4): the ones a master change could not
 * re-point (listed in `watch_down/<group>__repoint-failed` by the failover's commit) and any
 * member whose fresh heartbeat names another master. Pure: which of them to look at now, which
 * wait for the retry interval, which need nothing any more. The action (server/actions/repoint.ts)
 * asks each one directly under the lock and re-points it (repointVerdict).
 */
export const REPOINT_ALERT = 'repoint-failed' satisfies AlertKind;

/** The alert's detail: per node, the last reason it is not following. */
export function pendingOf(view: GroupView): Record<string, string> {
  const nodes = alertOf(view, REPOINT_ALERT)?.record.detail.nodes;
  if (typeof nodes !== 'object' || nodes === null || Array.isArray(nodes)) return {};
  const out: Record<string, string> = {};
  for (const [n, why] of Object.entries(nodes as Record<string, unknown>))
    out[n] = typeof why === 'string' ? why : 'not re-pointed';
  return out;
}

export interface RepointPlan {
  /** Every node that does not (yet) follow the master, with the reason last seen. */
  readonly pending: Readonly<Record<string, string>>;
  /** Pending nodes to ask (and re-point) now. */
  readonly tryNow: readonly string[];
  /** Alert entries that need nothing any more (follow the master, left the group, …). */
  readonly resolved: readonly string[];
  /** When the earliest waiting node may be tried again; null when none waits. */
  readonly recheckAt: number | null;
}

/** The worker's memory of a node it tried: when, how often in a row, and whether it had a heartbeat. */
export interface RepointTry {
  readonly at: number;
  readonly attempts: number;
  readonly heartbeat: boolean;
}

export interface RepointObservations {
  readonly now: number;
  readonly tried: ReadonlyMap<string, RepointTry>;
  /** Pause after the first failed try; doubled per further failure, up to MAX_RETRY_MS. */
  readonly retryMs: number;
}

/** Longest pause between two tries of a node that stays unreachable (its heartbeat's return ends it). */
export const MAX_RETRY_MS = 60_000;

/** When `t`'s node may be tried again: after a growing pause, or at once when its heartbeat came back. */
export function nextTryAt(t: RepointTry | undefined, heartbeatNow: boolean, retryMs: number): number {
  if (t === undefined || (heartbeatNow && !t.heartbeat)) return -Infinity;
  return t.at + Math.min(MAX_RETRY_MS, retryMs * 2 ** Math.max(0, t.attempts - 1));
}

/** Null when nothing is pending and no alert is open. */
export function planRepoint(view: GroupView, obs: RepointObservations): RepointPlan | null {
  const m = view.master?.record;
  if (m === undefined || view.meta === null) return null;
  const listed = pendingOf(view);
  const pending: Record<string, string> = {};
  const resolved: string[] = [];
  for (const [n, why] of Object.entries(listed)) {
    const mv = member(view, n);
    const o = mv?.online ?? null;
    if (mv === undefined || n === m.node || mv.rejoin !== null) resolved.push(n);
    // A heartbeat published after the master change that names the master: it follows.
    else if (o !== null && o.at >= m.since && o.masterNode === m.node) resolved.push(n);
    else pending[n] = why;
  }
  for (const mv of view.members) {
    const o = mv.online;
    if (mv.node === m.node || mv.rejoin !== null || o === null || mv.node in pending) continue;
    if (o.masterNode !== undefined && o.masterNode !== m.node && o.at >= m.since)
      pending[mv.node] = `replicates from ${o.masterNode}, not the master ${m.node}`;
  }
  if (
    Object.keys(pending).length === 0 &&
    resolved.length === 0 &&
    alertOf(view, REPOINT_ALERT) === undefined
  )
    return null;
  const tryNow: string[] = [];
  let recheckAt: number | null = null;
  for (const n of Object.keys(pending)) {
    const at = nextTryAt(obs.tried.get(n), member(view, n)?.online != null, obs.retryMs);
    if (obs.now >= at) tryNow.push(n);
    else recheckAt = recheckAt === null ? at : Math.min(recheckAt, at);
  }
  return { pending, tryNow, resolved, recheckAt };
}

export type RepointVerdict =
  /**
   * Configured to replicate from the master: nothing to do here (a stopped thread is the read
   * pool's business; CHANGE MASTER would not cure an SQL error, only interrupt a replica).
   */
  | { readonly kind: 'follows' }
  /** Behind or equal to the master: CHANGE MASTER to it (GTID slave_pos) and start. */
  | { readonly kind: 'repoint' }
  /** Holds transactions the master lacks: re-pointing would fail or diverge; a person decides. */
  | { readonly kind: 'diverged'; readonly why: string };

/**
 * Pure: what to do with a replica that answered, given the master's gtid_binlog_pos. Only a node
 * whose received and local positions are contained in the master's is re-pointed.
 */
export function repointVerdict(
  master: string,
  masterBinlogPos: string,
  p: ReachablePosition,
): RepointVerdict {
  if (p.replica !== null && p.replica.masterNode === master) return { kind: 'follows' };
  try {
    const errant = errantTips(p.gtidBinlogPos, p.gtidSlavePos, p.serverId);
    if (errant.length > 0)
      return {
        kind: 'diverged',
        why: `errant local transactions ${errant.map(formatGtid).join(',')}: inspect it, then 'mha setha'`,
      };
    const has = receivedPos(p);
    if (!gtidContains(masterBinlogPos, has))
      return {
        kind: 'diverged',
        why: `holds ${formatGtidPos(has)}, which the master (${masterBinlogPos || 'empty'}) lacks: inspect it, then 'mha setha'`,
      };
  } catch (err) {
    return { kind: 'diverged', why: `unreadable GTID positions: ${errorMessage(err)}` };
  }
  return { kind: 'repoint' };
}
