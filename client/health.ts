import {
  appliedCount,
  backlogBucket,
  backlogSeconds,
  backlogTrx,
  nextApplyRate,
  type ApplyRateSample,
} from '../core/backlog';
import type { GaleraOnline, OnlineRecord } from '../core/records';

/**
 * The heartbeat's pure core (design §4): what one check of the local mysqld saw, how that moves the
 * node's health, and which `online/<node>` record (if any) that health should publish. No I/O here;
 * client/agent.ts feeds observations in and carries the decisions out.
 */

/** What a successful check read from mysqld. */
export interface MysqlStatus {
  readonly role: 'master' | 'replica' | 'none';
  readonly readOnly: boolean;
  readonly gtidCurrent: string;
  readonly gtidSlave: string;
  /** Semi-sync as the server reports it (absent in statuses built without it, e.g. in tests). */
  readonly semiSync?: SemiSyncStatus;
  /** Present when replication is configured (SHOW SLAVE STATUS has a row). */
  readonly replica: ReplicaStatus | null;
  /** A Galera node's wsrep state (read when the group's flavor is galera). */
  readonly galera?: GaleraOnline;
}

export interface SemiSyncStatus {
  readonly masterEnabled: boolean;
  /** In effect (false after a fall-back to async). */
  readonly masterActive: boolean;
  /** Rpl_semi_sync_master_clients (absent in statuses built without it). */
  readonly masterClients?: number;
  readonly slaveEnabled: boolean;
}

export interface ReplicaStatus {
  /** `host:port` of the master it replicates from, when it is a valid node name. */
  readonly masterNode: string | null;
  readonly ioRunning: boolean;
  /** The IO thread retries its connection to the master ('Connecting'). */
  readonly ioConnecting?: boolean;
  readonly sqlRunning: boolean;
  /**
   * Seconds_Behind_Master; null when unknown (threads stopped). While the IO thread retries its
   * connection, the bound from boundLag: the last known lag plus the time since.
   */
  readonly lagSeconds: number | null;
  readonly gtidIo: string;
  /** The apply rate measured over the checks so far (set by decideHealth; absent in raw reads). */
  readonly applyRate?: ApplyRateSample;
}

/**
 * One check's outcome. `refused` (nothing listens, socket missing) and `dropped` (the persistent
 * connection died and the one reconnect attempt was refused) are unambiguous: mysqld is not
 * running, down at once. `timeout` (a hung mysqld) and `error` (mysqld answers but the check
 * failed, e.g. too many connections, a lock wait, access denied) are counted up to failAfter.
 */
export type Observation =
  | { readonly kind: 'ok'; readonly at: number; readonly status: MysqlStatus }
  | { readonly kind: 'refused'; readonly at: number; readonly message: string }
  | { readonly kind: 'dropped'; readonly at: number; readonly message: string }
  | { readonly kind: 'timeout'; readonly at: number; readonly message: string }
  | { readonly kind: 'error'; readonly at: number; readonly message: string };

export type Health =
  /** No check has finished yet. */
  | { readonly kind: 'starting' }
  | { readonly kind: 'up'; readonly since: number; readonly status: MysqlStatus; readonly at: number }
  /** Some consecutive checks timed out or failed, fewer than failAfter; the last good status stands. */
  | {
      readonly kind: 'suspect';
      readonly since: number;
      readonly failures: number;
      readonly status: MysqlStatus | null;
      /** When `status` was read (null with no status). */
      readonly statusAt: number | null;
      readonly at: number;
      readonly message: string;
      /** Start of the run of timed-out checks this failure ends (none: the last one answered). */
      readonly silentSince?: number;
    }
  | {
      readonly kind: 'down';
      readonly since: number;
      readonly reason: DownReason;
      readonly message: string;
      /** With reason 'timeouts': since when mysqld has not answered at all. */
      readonly silentSince?: number;
    };

export type DownReason = 'refused' | 'dropped' | 'timeouts' | 'errors';

/**
 * Moves health by one observation. `failAfter` ≥ 1 counted failures make a hung mysqld down.
 * While down, `reason` follows the latest failure (keeping `since`): a mysqld that was refused and
 * now times out is running again (starting, or hung), so it no longer counts as not running.
 */
export function decideHealth(prev: Health, obs: Observation, failAfter: number): Health {
  switch (obs.kind) {
    case 'ok': {
      const status = measureApplyRate(
        prev.kind === 'up' ? prev.status : null,
        boundLag(prev.kind === 'up' ? prev : null, obs.status, obs.at),
        obs.at,
      );
      return { kind: 'up', since: prev.kind === 'up' ? prev.since : obs.at, status, at: obs.at };
    }
    case 'refused':
    case 'dropped':
      return {
        kind: 'down',
        since: prev.kind === 'down' ? prev.since : obs.at,
        reason: obs.kind,
        message: obs.message,
      };
    case 'timeout':
    case 'error': {
      const counted: DownReason = obs.kind === 'timeout' ? 'timeouts' : 'errors';
      const silent = obs.kind === 'timeout' ? { silentSince: silentSinceOf(prev) ?? obs.at } : {};
      if (prev.kind === 'down')
        return { kind: 'down', since: prev.since, reason: counted, message: obs.message, ...silent };
      const failures = prev.kind === 'suspect' ? prev.failures + 1 : 1;
      if (failures >= failAfter) {
        return { kind: 'down', since: obs.at, reason: counted, message: obs.message, ...silent };
      }
      const status = prev.kind === 'up' || prev.kind === 'suspect' ? prev.status : null;
      const statusAt = prev.kind === 'up' ? prev.at : prev.kind === 'suspect' ? prev.statusAt : null;
      const since = prev.kind === 'suspect' ? prev.since : obs.at;
      return {
        kind: 'suspect',
        since,
        failures,
        status,
        statusAt,
        at: obs.at,
        message: obs.message,
        ...silent,
      };
    }
    default:
      return assertNever(obs);
  }
}

/** Start of an unbroken run of timed-out checks that `h` is in (a timeout check's `at` is its start). */
function silentSinceOf(h: Health): number | undefined {
  if (h.kind === 'suspect') return h.silentSince;
  if (h.kind === 'down' && h.reason === 'timeouts') return h.silentSince;
  return undefined;
}

/**
 * How long a mysqld that is down by timeouts (hung, or its host's network gone) has not answered
 * at `now`; null when it is not in that state. Published in agent/<node>.unansweredMs so the
 * server's confirmation does not wait out again what the agent already established.
 */
export function unansweredMs(h: Health, now: number): number | null {
  if (h.kind !== 'down' || h.reason !== 'timeouts' || h.silentSince === undefined) return null;
  return Math.max(0, Math.round(now - h.silentSince));
}

/**
 * A replica whose IO thread retries its connection (its master died or is unreachable) has no
 * Seconds_Behind_Master; its data is no staler than the lag last measured plus the time since.
 * That bound is what it reports as lag, so the read pool (server) and HAProxy's `/replica?max_lag`
 * check keep it while it is fresh enough — during a master's host death every replica is in this
 * state until the failover re-points it — and drop it once it is not. Without a previous measure
 * the lag stays unknown.
 */
export function boundLag(
  prev: { readonly status: MysqlStatus; readonly at: number } | null,
  next: MysqlStatus,
  at: number,
): MysqlStatus {
  const r = next.replica;
  if (r === null || r.ioConnecting !== true || r.lagSeconds !== null || !r.sqlRunning) return next;
  const last = prev?.status.replica?.lagSeconds;
  if (last === null || last === undefined || prev === null) return next;
  const lag = Math.round((last + Math.max(0, at - prev.at) / 1000) * 10) / 10;
  return { ...next, replica: { ...r, lagSeconds: lag } };
}

/** Carries the apply rate (core/backlog) from the previous good status to this one. */
export function measureApplyRate(prev: MysqlStatus | null, next: MysqlStatus, at: number): MysqlStatus {
  const r = next.replica;
  const applied = appliedCount(next.gtidSlave);
  if (r === null || applied === null) return next;
  const rate = nextApplyRate(prev?.replica?.applyRate ?? null, applied, at);
  return { ...next, replica: { ...r, applyRate: rate } };
}

/**
 * Whether agent/<node> says `mysqldDown: true`, which the server takes as a definitive "dead" and
 * fails over on without probing (design §5.3: "an alive agent reporting its mysqld down"). Only
 * when mysqld is really not running: the latest failure was a refused connection or a dropped one
 * that could not be reopened. A mysqld that times out or answers with errors (too many
 * connections, lock waits, access denied) may well be serving: its online/ still goes at once
 * (down after failAfter), but the server must probe it itself before deciding.
 */
export function reportsMysqldDown(h: Health): boolean {
  if (h.kind !== 'down') return false;
  switch (h.reason) {
    case 'refused':
    case 'dropped':
      return true;
    case 'timeouts':
    case 'errors':
      return false;
    default:
      return assertNever(h.reason);
  }
}

/** The last good status while the node still counts as alive (up, or suspect with a status). */
export function liveStatus(h: Health): MysqlStatus | null {
  if (h.kind === 'up') return h.status;
  if (h.kind === 'suspect') return h.status;
  return null;
}

/** When the live status was read (the start of the check that read it); null without one. */
export function liveStatusAt(h: Health): number | null {
  if (h.kind === 'up') return h.at;
  if (h.kind === 'suspect') return h.statusAt;
  return null;
}

/**
 * Lag buckets: `online/` is rewritten only when the lag crosses one of these boundaries (seconds),
 * not on every change of Seconds_Behind_Master. The group's maxReadLagSeconds is always a boundary,
 * so the server sees at once the change that matters for the read pool. No boundary at 1 s:
 * Seconds_Behind_Master flickers between 0 and 1 under ordinary load (measured: two rewrites per
 * flicker during a handful of inserts on a busy machine).
 */
export const LAG_BOUNDARIES: readonly number[] = [5, 30, 120, 600];

export function lagBucket(lag: number | null | undefined, maxReadLagSeconds: number): number | null {
  if (lag === null || lag === undefined) return null;
  let bucket = 0;
  for (const b of LAG_BOUNDARIES) if (lag >= b) bucket++;
  // A second axis for the threshold: 2·bucket + over, so crossing maxReadLag changes the bucket too.
  return bucket * 2 + (lag > maxReadLagSeconds ? 1 : 0);
}

/** The `online/<node>` value for a status (the server and CLI read it, design §3). */
export function onlineRecordFor(status: MysqlStatus, at: number): OnlineRecord {
  const r = status.replica;
  const trx = r !== null ? backlogTrx(r.gtidIo, status.gtidSlave) : null;
  return {
    v: 1,
    mysqldUp: true,
    role: status.role,
    readOnly: status.readOnly,
    gtidCurrent: status.gtidCurrent,
    ...(status.gtidSlave !== '' ? { gtidSlave: status.gtidSlave } : {}),
    ...(r !== null
      ? {
          gtidIo: r.gtidIo,
          lagSeconds: r.lagSeconds,
          ioRunning: r.ioRunning,
          ...(r.ioConnecting === true ? { ioConnecting: true } : {}),
          sqlRunning: r.sqlRunning,
          ...(r.masterNode !== null ? { masterNode: r.masterNode } : {}),
          ...(trx !== null
            ? { backlogTrx: trx, backlogSeconds: backlogSeconds(trx, r.applyRate?.rate ?? null) }
            : {}),
        }
      : {}),
    ...(status.role === 'master' && status.semiSync !== undefined
      ? {
          semiSync: {
            enabled: status.semiSync.masterEnabled,
            active: status.semiSync.masterActive,
            clients: status.semiSync.masterClients ?? 0,
          },
        }
      : {}),
    ...(status.galera !== undefined ? { galera: status.galera } : {}),
    at,
  };
}

/**
 * Whether a new record differs from the published one in what the server acts on: role, read_only,
 * replication threads, the master replicated from, the lag bucket, or the master's semi-sync state. GTIDs and timestamps alone
 * never cause a write (the server reads positions directly from mysqld when it needs them).
 */
export function onlineChanged(
  published: OnlineRecord,
  next: OnlineRecord,
  maxReadLagSeconds: number,
): boolean {
  return (
    published.role !== next.role ||
    published.readOnly !== next.readOnly ||
    published.ioRunning !== next.ioRunning ||
    published.ioConnecting !== next.ioConnecting ||
    published.sqlRunning !== next.sqlRunning ||
    published.masterNode !== next.masterNode ||
    published.semiSync?.enabled !== next.semiSync?.enabled ||
    published.semiSync?.active !== next.semiSync?.active ||
    published.semiSync?.clients !== next.semiSync?.clients ||
    galeraChanged(published.galera, next.galera) ||
    lagBucket(published.lagSeconds, maxReadLagSeconds) !== lagBucket(next.lagSeconds, maxReadLagSeconds) ||
    backlogBucket(published.backlogTrx) !== backlogBucket(next.backlogTrx)
  );
}

/** A change of the wsrep state that routing depends on; the committed seqno alone is not one. */
function galeraChanged(a: GaleraOnline | undefined, b: GaleraOnline | undefined): boolean {
  if (a === undefined || b === undefined) return a !== b;
  return (
    a.clusterStatus !== b.clusterStatus ||
    a.localState !== b.localState ||
    a.ready !== b.ready ||
    a.clusterSize !== b.clusterSize ||
    a.stateUuid !== b.stateUuid
  );
}

/** Why online/ is (or is not) wanted: the agent logs transitions of this. */
export type OnlineWish =
  | { readonly kind: 'publish'; readonly record: OnlineRecord }
  | {
      readonly kind: 'absent';
      readonly why: 'starting' | 'mysqld-down' | 'suspect-no-status' | 'rejoin-pending' | 'rejoin-unknown';
    };

/**
 * What `online/<node>` should hold. `rejoin` is the state of `rejoin/<node>`: 'present' blocks
 * publishing (the node must be reconciled first, design §4), 'unknown' (not read yet) too, so a
 * node that must rejoin never flashes online at start-up.
 */
export function desiredOnline(h: Health, rejoin: 'absent' | 'present' | 'unknown'): OnlineWish {
  const status = liveStatus(h);
  if (status === null) {
    const why =
      h.kind === 'starting' ? 'starting' : h.kind === 'suspect' ? 'suspect-no-status' : 'mysqld-down';
    return { kind: 'absent', why };
  }
  if (rejoin === 'present') return { kind: 'absent', why: 'rejoin-pending' };
  if (rejoin === 'unknown') return { kind: 'absent', why: 'rejoin-unknown' };
  return { kind: 'publish', record: onlineRecordFor(status, liveStatusAt(h) ?? 0) };
}

/**
 * The publication step: given what is believed published and what is wanted, what to do.
 * 'keep' when the difference does not matter to the server (see onlineChanged).
 */
export type OnlineAction =
  | { readonly kind: 'keep' }
  | { readonly kind: 'create'; readonly record: OnlineRecord }
  | { readonly kind: 'update'; readonly record: OnlineRecord }
  | { readonly kind: 'delete' };

export function onlineAction(
  published: OnlineRecord | null,
  wish: OnlineWish,
  maxReadLagSeconds: number,
): OnlineAction {
  if (wish.kind === 'absent') return published === null ? { kind: 'keep' } : { kind: 'delete' };
  if (published === null) return { kind: 'create', record: wish.record };
  return onlineChanged(published, wish.record, maxReadLagSeconds)
    ? { kind: 'update', record: wish.record }
    : { kind: 'keep' };
}

export function assertNever(x: never): never {
  throw new Error(`unexpected value ${JSON.stringify(x)}`);
}
