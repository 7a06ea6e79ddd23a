import type { GroupSettings, OnlineRecord } from './records';

/**
 * Semi-sync as a group policy (issue 10 §1, design §11). `on`: the master waits
 * `semiSyncTimeoutMs` for one replica's acknowledgement, then falls back to async (and zkmha says
 * so). `required`: the wait is effectively unbounded, so a master with no acknowledging replica
 * stops acknowledging commits instead of degrading silently.
 */
export type SemiSyncPolicy = 'off' | 'on' | 'required';

/**
 * rpl_semi_sync_master_timeout for `required`: 2^32−1 ms (~49 days). MariaDB accepts larger
 * values, but this one is exact in a JS number and in every MariaDB build, and no commit waits
 * that long without a person noticing (the alert below).
 */
export const REQUIRED_MASTER_TIMEOUT_MS = 4_294_967_295;

/** What the MySQL side needs to apply a policy: the replica side and the master's wait. */
export interface SemiSyncSetup {
  readonly enabled: boolean;
  /** rpl_semi_sync_master_timeout on a master (ignored when not enabled). */
  readonly masterTimeoutMs: number;
}

export function semiSyncSetup(
  settings: Pick<GroupSettings, 'semiSync' | 'semiSyncTimeoutMs'>,
): SemiSyncSetup {
  const enabled = settings.semiSync !== 'off';
  const masterTimeoutMs =
    settings.semiSync === 'required' ? REQUIRED_MASTER_TIMEOUT_MS : settings.semiSyncTimeoutMs;
  return { enabled, masterTimeoutMs };
}

/**
 * How well the master's acknowledgements match the policy, from its heartbeat:
 * - `off`: the policy is off; nothing is promised beyond async replication.
 * - `ok`: semi-synchronous with at least one acknowledging replica.
 * - `waiting`: semi-sync in effect, no replica connected: commits wait (`required`: until one
 *   connects; `on`: up to semiSyncTimeoutMs, then the master goes async and the state `at-risk`).
 *   Nothing acknowledged is at risk yet; replicas reconnecting after a re-point pass through it.
 * - `at-risk`: the policy asks for semi-sync but the master is not semi-synchronous (fell back to
 *   async after its timeout, or the master side is disabled): acknowledged writes may exist on the
 *   master alone.
 * - `unknown`: no heartbeat from the master, or one without semi-sync figures.
 */
export type SemiSyncState = 'off' | 'ok' | 'waiting' | 'at-risk' | 'unknown';

export interface SemiSyncHealth {
  readonly policy: SemiSyncPolicy;
  readonly state: SemiSyncState;
  /** Rpl_semi_sync_master_status, when the heartbeat carries it. */
  readonly active: boolean | null;
  /** Rpl_semi_sync_master_clients, when the heartbeat carries it. */
  readonly clients: number | null;
  readonly note: string;
}

export function semiSyncHealth(policy: SemiSyncPolicy, master: OnlineRecord | null): SemiSyncHealth {
  const s = master?.semiSync;
  const active = s?.active ?? null;
  const clients = s?.clients ?? null;
  const base = { policy, active, clients };
  if (policy === 'off') return { ...base, state: 'off', note: 'semi-sync off: replication is asynchronous' };
  if (s === undefined)
    return { ...base, state: 'unknown', note: 'no semi-sync figures from the master heartbeat' };
  if (!s.enabled)
    return {
      ...base,
      state: 'at-risk',
      note: `semi-sync ${policy} but rpl_semi_sync_master_enabled is OFF on the master: acknowledged writes at risk`,
    };
  if (!s.active)
    return {
      ...base,
      state: 'at-risk',
      note: `semi-sync ${policy} but the master fell back to async (${s.clients} semi-sync replicas): acknowledged writes at risk`,
    };
  if (s.clients === 0)
    return {
      ...base,
      state: 'waiting',
      note:
        policy === 'required'
          ? 'semi-sync required and no semi-sync replica connected: commits wait'
          : 'semi-sync on and no semi-sync replica connected: the next commit waits semiSyncTimeoutMs, then goes async',
    };
  return { ...base, state: 'ok', note: `semi-sync ${policy}: ${s.clients} acknowledging replicas` };
}

/** The promote options for a group's policy (flavor.promote / promoteCandidate). */
export function promoteSemiSync(settings: Pick<GroupSettings, 'semiSync' | 'semiSyncTimeoutMs'>): {
  readonly semiSync: boolean;
  readonly semiSyncTimeoutMs: number;
} {
  const s = semiSyncSetup(settings);
  return { semiSync: s.enabled, semiSyncTimeoutMs: s.masterTimeoutMs };
}
