import { compareGtidPos, formatGtid, mostAdvanced, parseGtidPos, type Gtid, type GtidPos } from './gtid';
import { BACKLOG_TIE_TRX, backlogTrx } from './backlog';
import { errorMessage } from './errors';
import type { GroupView } from './view';

/**
 * Which replica to promote (design §5.5) — a pure function of the group view and the replication
 * positions read from every live replica. Used by the server's failover and by `mha status`
 * ("which replica would be promoted right now and why").
 *
 * Order: the most RECEIVED transactions first (Gtid_IO_Pos, never gtid_current_pos); among those,
 * the smallest apply BACKLOG (received − applied: the one writable soonest, since the drain must
 * apply all of it first), backlogs within BACKLOG_TIE_TRX of the smallest counting as equal; then
 * priority (1 before 2; 0 never), then the old master's data centre, then the node name.
 *
 * A replica that is not eligible (priority 0, say) but received more than every eligible one is
 * reported as `catchUpFrom`: the failover lets the chosen candidate replicate from it first, so
 * an acknowledged (semi-sync) transaction that only it holds is not lost.
 */
export interface ReplicaStatus {
  /** `host:port` of the master it replicates from, null when not configured. */
  readonly masterNode: string | null;
  readonly ioRunning: boolean;
  readonly sqlRunning: boolean;
  /** Gtid_IO_Pos: last GTID received per domain. */
  readonly gtidIoPos: string;
  readonly lastSqlError: string;
}

export type NodePosition =
  | { readonly reachable: false; readonly error: string }
  | {
      readonly reachable: true;
      readonly serverId: number;
      readonly readOnly: boolean;
      readonly gtidBinlogPos: string;
      /** gtid_slave_pos: applied from replication. */
      readonly gtidSlavePos: string;
      readonly replica: ReplicaStatus | null;
    };

export type ReachablePosition = Extract<NodePosition, { readonly reachable: true }>;

export interface CandidateAssessment {
  readonly node: string;
  readonly eligible: boolean;
  /** Why not eligible (empty when eligible). */
  readonly why: string;
  /** Received position (text), when known. */
  readonly received: string | null;
  readonly priority: number | null;
  readonly dc: string | null;
  /** Usable as a catch-up source (reachable, replicating from the old master, no errant writes). */
  readonly source: boolean;
  /** Received but not yet applied transactions (core/backlog), when known. */
  readonly backlogTrx?: number | null;
}

export type CandidateChoice =
  | {
      readonly kind: 'chosen';
      readonly node: string;
      readonly received: string;
      /** Human-readable explanation, e.g. for `mha status`. */
      readonly reason: string;
      /** A more advanced (ineligible) replica the candidate must catch up from first, or null. */
      readonly catchUpFrom: { readonly node: string; readonly received: string } | null;
      readonly assessments: readonly CandidateAssessment[];
    }
  | {
      readonly kind: 'none';
      readonly reason: 'no-eligible-replica' | 'diverged-positions';
      readonly detail: string;
      readonly assessments: readonly CandidateAssessment[];
    };

export interface ChooseOptions {
  /** The master being replaced; default view.master.record.node. */
  readonly oldMaster?: string | null;
  /** Nodes a replica may be replicating from and still count (default: the old master only). */
  readonly acceptedMasters?: readonly string[];
  /** Nodes never to choose (e.g. a candidate that already failed). */
  readonly exclude?: readonly string[];
}

/** What a replica received: Gtid_IO_Pos, unless gtid_slave_pos is further (e.g. right after a restart). */
export function receivedPos(p: ReachablePosition): GtidPos {
  const slave = parseGtidPos(p.gtidSlavePos);
  if (p.replica === null || p.replica.gtidIoPos.trim() === '') return slave;
  const io = parseGtidPos(p.replica.gtidIoPos);
  return compareGtidPos(io, slave) === 'behind' ? slave : io;
}

/**
 * Errant (local) writes visible on a replica: a domain whose binlog tip carries the replica's own
 * server id and differs from what it applied from replication. Only the tip is visible from
 * positions; a local write followed by replicated ones is not (MariaDB then fails the replica
 * with error 1950/1236 under gtid_strict_mode, which the SQL-thread check catches).
 */
export function errantTips(binlogPos: string, slavePos: string, serverId: number): Gtid[] {
  const applied = new Map(parseGtidPos(slavePos).map((g) => [g.domain, g]));
  return parseGtidPos(binlogPos).filter((g) => {
    if (g.server !== serverId) return false;
    const s = applied.get(g.domain);
    return s === undefined || s.seq !== g.seq || s.server !== g.server;
  });
}

function fmt(pos: GtidPos): string {
  return pos.map(formatGtid).join(',');
}

interface Scored {
  readonly node: string;
  readonly pos: GtidPos;
  readonly priority: number;
  readonly sameDc: boolean;
  /** Apply backlog in transactions (null: unknown, ranked last). */
  readonly backlog: number | null;
}

/** Tie-breakers among equally advanced replicas: priority, then data centre, then name. */
export function compareTies(a: Scored, b: Scored): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  if (a.sameDc !== b.sameDc) return a.sameDc ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/**
 * The equally advanced replicas that will be writable soonest: those whose apply backlog is
 * within BACKLOG_TIE_TRX of the smallest (a difference that small costs well under a second to
 * apply, and then the operator's priority should decide). Unknown backlogs count only when no
 * replica's backlog is known.
 */
export function soonestWritable<T extends { readonly backlog: number | null }>(leaders: readonly T[]): T[] {
  const known = leaders.filter((s) => s.backlog !== null);
  if (known.length === 0) return [...leaders];
  const min = Math.min(...known.map((s) => s.backlog!));
  return known.filter((s) => s.backlog! <= min + BACKLOG_TIE_TRX);
}

export function chooseCandidate(
  view: GroupView,
  positions: ReadonlyMap<string, NodePosition>,
  opts: ChooseOptions = {},
): CandidateChoice {
  const oldMaster = opts.oldMaster !== undefined ? opts.oldMaster : (view.master?.record.node ?? null);
  const accepted = new Set(opts.acceptedMasters ?? (oldMaster !== null ? [oldMaster] : []));
  const exclude = new Set(opts.exclude ?? []);
  const oldDc =
    oldMaster !== null ? (view.members.find((m) => m.node === oldMaster)?.host?.dc ?? null) : null;

  const assessments: CandidateAssessment[] = [];
  const eligible: Scored[] = [];
  const sources: Scored[] = [];

  for (const m of view.members) {
    if (m.node === oldMaster) continue;
    const p = positions.get(m.node);
    const priority = m.host?.priority ?? null;
    const dc = m.host?.dc ?? null;
    const base = { node: m.node, priority, dc };
    if (p === undefined || !p.reachable) {
      assessments.push({
        ...base,
        eligible: false,
        why: `unreachable${p !== undefined ? `: ${p.error}` : ''}`,
        received: null,
        source: false,
      });
      continue;
    }
    let pos: GtidPos;
    try {
      pos = receivedPos(p);
    } catch (err) {
      assessments.push({
        ...base,
        eligible: false,
        why: `bad GTID position: ${errorMessage(err)}`,
        received: null,
        source: false,
      });
      continue;
    }
    const received = fmt(pos);
    const backlog = backlogTrx(received, p.gtidSlavePos);
    // Why it may not even serve as a source of transactions.
    let sourceWhy = '';
    if (p.replica === null) sourceWhy = 'not a replica';
    else if (p.replica.masterNode === null || !accepted.has(p.replica.masterNode))
      sourceWhy = `replicates from ${p.replica.masterNode ?? 'nobody'}, not ${oldMaster ?? 'the old master'}`;
    else {
      let errant: string[] = [];
      try {
        errant = errantTips(p.gtidBinlogPos, p.gtidSlavePos, p.serverId).map(formatGtid);
      } catch (err) {
        errant = [`unreadable positions (${errorMessage(err)})`];
      }
      if (errant.length > 0) sourceWhy = `errant local transactions ${errant.join(',')}`;
    }
    const scored: Scored = {
      node: m.node,
      pos,
      priority: priority ?? 9,
      sameDc: oldDc !== null && dc === oldDc,
      backlog,
    };
    if (sourceWhy === '') sources.push(scored);

    let why = sourceWhy;
    if (why === '') {
      if (m.rejoin !== null) why = 'rejoin pending';
      else if (m.host === null) why = 'no meta_host record';
      else if (m.host.priority === 0) why = 'priority 0 (never promoted)';
      else if (m.host.banned !== undefined)
        why = `banned after ${m.host.banned.epochs.length} failovers (mha unban ${m.node})`;
      else if (exclude.has(m.node)) why = 'excluded (failed earlier in this failover)';
      else if (p.replica !== null && !p.replica.sqlRunning)
        why = `SQL thread stopped${p.replica.lastSqlError !== '' ? `: ${p.replica.lastSqlError}` : ''}`;
    }
    assessments.push({
      ...base,
      eligible: why === '',
      why,
      received,
      source: sourceWhy === '',
      backlogTrx: backlog,
    });
    if (why === '') eligible.push(scored);
  }

  if (eligible.length === 0) {
    return {
      kind: 'none',
      reason: 'no-eligible-replica',
      detail:
        assessments.length === 0
          ? 'the group has no replica'
          : assessments.map((a) => `${a.node}: ${a.why}`).join('; '),
      assessments,
    };
  }

  const best = mostAdvanced(eligible, (s) => s.pos);
  if (best.kind !== 'leaders') {
    const names =
      best.kind === 'diverged' ? best.maximal.map((s) => `${s.node} (${fmt(s.pos)})`).join(', ') : '';
    return {
      kind: 'none',
      reason: 'diverged-positions',
      detail: `eligible replicas hold diverging histories: ${names}`,
      assessments,
    };
  }
  const soonest = soonestWritable(best.leaders);
  const winner = [...soonest].sort(compareTies)[0]!;

  // Does some other usable replica hold more than the winner? Then the winner catches up from it.
  let catchUpFrom: { node: string; received: string } | null = null;
  const ahead = sources.filter(
    (s) => s.node !== winner.node && compareGtidPos(s.pos, winner.pos) === 'ahead',
  );
  if (ahead.length > 0) {
    const overall = mostAdvanced(ahead, (s) => s.pos);
    if (overall.kind === 'leaders') {
      const src = [...overall.leaders].sort(compareTies)[0]!;
      catchUpFrom = { node: src.node, received: fmt(src.pos) };
    }
  }

  const tied = soonest.length;
  const slower = best.leaders.filter((s) => !soonest.includes(s));
  const reason =
    `${winner.node} received the most (${fmt(winner.pos) || 'empty position'})` +
    (slower.length > 0
      ? `; smallest apply backlog (${winner.backlog ?? '?'} transactions, vs ${slower.map((s) => `${s.node}: ${s.backlog ?? 'unknown'}`).join(', ')})`
      : '') +
    (tied > 1
      ? `; tie among ${tied} broken by priority ${winner.priority}${winner.sameDc ? ', same data centre as the old master' : ''}, then name`
      : '') +
    (catchUpFrom !== null ? `; will first catch up from ${catchUpFrom.node} (${catchUpFrom.received})` : '');
  return { kind: 'chosen', node: winner.node, received: fmt(winner.pos), reason, catchUpFrom, assessments };
}
