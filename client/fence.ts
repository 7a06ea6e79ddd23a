/**
 * Self-fencing (design §4), pure. A master whose agent has lost ZooKeeper for 2/3 of the session
 * timeout must assume that the workers may soon see its `online/` vanish and promote a replica; it
 * sets read_only=ON and kills client connections before that can happen — unless failsafe holds:
 * every replica of the group is still replicating from it, so none can have been promoted.
 *
 * Measured on MariaDB 10.11: the master side alone cannot prove a replica is still attached.
 * After `STOP SLAVE` (what promotion does) or a SIGKILL of the replica, its `Binlog Dump` thread
 * and its `SHOW SLAVE HOSTS` row stay on an idle master until the next event or heartbeat
 * (MASTER_HEARTBEAT_PERIOD, default 30 s). So a replica counts as attached only when BOTH the
 * master lists it (`SHOW SLAVE HOSTS`, cheap first filter) AND the replica itself, asked directly,
 * reports its IO thread running against this master.
 */

/** When the fencing check is due: disconnected for at least 2/3 of the session timeout. */
export function fenceThresholdMs(sessionTimeoutMs: number): number {
  return Math.floor((sessionTimeoutMs * 2) / 3);
}

export type FenceGate =
  | {
      readonly kind: 'skip';
      readonly why: 'zk-connected' | 'below-threshold' | 'mysqld-not-alive' | 'read-only';
    }
  | { readonly kind: 'check' };

/** Whether to look at the replicas at all (and possibly fence). */
export function fenceGate(input: {
  readonly zkConnected: boolean;
  /** How long ZooKeeper has been silent (since the last answer before the disconnect). */
  readonly zkSilentMs: number;
  readonly sessionTimeoutMs: number;
  /** null when mysqld is not alive (down, or no status yet). */
  readonly readOnly: boolean | null;
}): FenceGate {
  if (input.zkConnected) return { kind: 'skip', why: 'zk-connected' };
  if (input.zkSilentMs < fenceThresholdMs(input.sessionTimeoutMs))
    return { kind: 'skip', why: 'below-threshold' };
  if (input.readOnly === null) return { kind: 'skip', why: 'mysqld-not-alive' };
  if (input.readOnly) return { kind: 'skip', why: 'read-only' };
  return { kind: 'check' };
}

/** A replica as this master sees it (a `SHOW SLAVE HOSTS` row). */
export interface RegisteredReplica {
  readonly serverId: number;
  readonly host: string;
  readonly port: number;
}

/** What a replica said when asked directly (null: it could not be asked). */
export interface ReplicaReport {
  readonly ioRunning: boolean;
  /** `Master_Host:Master_Port` of its replication configuration. */
  readonly masterNode: string | null;
}

export type FenceDecision =
  | { readonly kind: 'failsafe'; readonly replicas: readonly string[] }
  | { readonly kind: 'fence'; readonly reason: string; readonly detached: readonly string[] };

/** The replicas the failsafe must hear from: members of the last known meta_group/, minus self. */
export function replicasToConfirm(members: readonly string[] | null, self: string): readonly string[] | null {
  return members === null ? null : members.filter((m) => m !== self);
}

/** Replicas that the master's own view already shows as not attached (no SHOW SLAVE HOSTS row). */
export function unregistered(
  replicas: readonly string[],
  registered: readonly RegisteredReplica[],
): string[] {
  const seen = new Set(registered.map((r) => `${r.host}:${r.port}`));
  return replicas.filter((r) => !seen.has(r));
}

/**
 * The decision. `members` is null when no meta_group/ record was ever read (then nothing proves a
 * replica is attached: fence). A group with no other member cannot have a replica promoted, so it
 * is failsafe by definition (fencing would only cause an outage).
 */
export function decideFence(input: {
  readonly self: string;
  readonly members: readonly string[] | null;
  readonly registered: readonly RegisteredReplica[];
  readonly reports: ReadonlyMap<string, ReplicaReport | null>;
}): FenceDecision {
  const replicas = replicasToConfirm(input.members, input.self);
  if (replicas === null)
    return { kind: 'fence', reason: 'group membership unknown (no meta_group record read)', detached: [] };
  const missing = unregistered(replicas, input.registered);
  if (missing.length > 0)
    return {
      kind: 'fence',
      reason: `not registered on this master: ${missing.join(', ')}`,
      detached: missing,
    };
  const detached: string[] = [];
  const why: string[] = [];
  for (const r of replicas) {
    const rep = input.reports.get(r) ?? null;
    if (rep === null) {
      detached.push(r);
      why.push(`${r} unreachable`);
    } else if (!rep.ioRunning) {
      detached.push(r);
      why.push(`${r} IO thread not running`);
    } else if (rep.masterNode !== input.self) {
      detached.push(r);
      why.push(`${r} replicates from ${rep.masterNode ?? 'nobody'}`);
    }
  }
  if (detached.length > 0) return { kind: 'fence', reason: why.join('; '), detached };
  return { kind: 'failsafe', replicas };
}
