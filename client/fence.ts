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

// --- A writable node that is not the master (design §9.1) ----------------------------------------

/**
 * Fencing a stray writable node, pure. The rule above only covers a master that loses ZooKeeper.
 * A node can also be writable while ZooKeeper has moved on: an old master whose mysqld hung
 * (SIGSTOP, an I/O stall) and un-hung after a failover that could not reach it to fence it, a
 * mysqld restarted with read_only=OFF, a replica made writable by hand. Behind a router that is
 * stale or cut off from ZooKeeper that is a second writable master. So the agent fences its own
 * mysqld when it is writable AND ZooKeeper says it must not be: master/<group> names another node,
 * or rejoin/<self> exists (it was failed over and must be reconciled before it may serve).
 *
 * Holds (writable, not the master, yet not fenced):
 *  - task/<group> names this node as its candidate: a failover, switchover or add is promoting it
 *    (the candidate is writable a moment before master/ names it; a stalled commit leaves it so
 *    until a worker finishes the task);
 *  - task/<group> is invalid: unreadable intent is never acted on (design §2);
 *  - white/<group> exists (maintenance) and the only reason is master/: an operator promoting a
 *    node by hand before `mha setmaster`. A pending rejoin/ is fenced even then.
 */
export interface StrayView {
  /** The node's group (meta_host/<self>); null when not in a group. */
  readonly group: string | null;
  /** master/<group>: whom it names; 'absent' or 'invalid' otherwise. */
  readonly master: { readonly node: string; readonly epoch: number } | 'absent' | 'invalid';
  /** rejoin/<self> exists. */
  readonly rejoinPending: boolean;
  /** task/<group>: null when absent. */
  readonly task: { readonly kind: string; readonly candidate: string | null } | null | 'invalid';
  /** white/<group> exists (valid or not: an invalid one is still someone's intent). */
  readonly white: boolean;
}

export type StrayReason = 'not-master' | 'rejoin-pending';

export type StrayDecision =
  | {
      readonly kind: 'none';
      readonly why:
        'mysqld-not-up' | 'read-only' | 'no-group' | 'master-absent' | 'master-invalid' | 'legitimate-master';
    }
  | {
      readonly kind: 'hold';
      readonly stray: StrayReason;
      readonly why: 'promotion-in-progress' | 'task-invalid' | 'maintenance';
      readonly detail: string;
    }
  | { readonly kind: 'fence'; readonly stray: StrayReason; readonly reason: string };

/**
 * `readOnly` is null unless the last check succeeded (only a fresh status is acted on). `view` must
 * come from ZooKeeper reads made after that check: a promotion writes task/ before it makes the
 * candidate writable, so a later read sees the candidate in task/ or (after its commit) in master/.
 */
export function decideStray(input: {
  readonly self: string;
  readonly readOnly: boolean | null;
  readonly view: StrayView;
}): StrayDecision {
  const { self, view } = input;
  if (input.readOnly === null) return { kind: 'none', why: 'mysqld-not-up' };
  if (input.readOnly) return { kind: 'none', why: 'read-only' };
  if (view.group === null) return { kind: 'none', why: 'no-group' };
  let stray: StrayReason;
  let reason: string;
  if (view.rejoinPending) {
    stray = 'rejoin-pending';
    reason = `rejoin/${self} exists: this node was failed over and must be reconciled before it serves`;
  } else if (view.master === 'absent') return { kind: 'none', why: 'master-absent' };
  else if (view.master === 'invalid') return { kind: 'none', why: 'master-invalid' };
  else if (view.master.node === self) return { kind: 'none', why: 'legitimate-master' };
  else {
    stray = 'not-master';
    reason = `master/${view.group} names ${view.master.node} (epoch ${view.master.epoch})`;
  }
  if (view.task === 'invalid')
    return {
      kind: 'hold',
      stray,
      why: 'task-invalid',
      detail: `task/${view.group} is invalid: not acting on it (${reason})`,
    };
  if (view.task !== null && view.task.candidate === self)
    return {
      kind: 'hold',
      stray,
      why: 'promotion-in-progress',
      detail: `task/${view.group} (${view.task.kind}) is promoting this node (${reason})`,
    };
  if (stray === 'not-master' && view.white)
    return {
      kind: 'hold',
      stray,
      why: 'maintenance',
      detail: `white/${view.group} exists: maintenance, left to the operator (${reason})`,
    };
  return { kind: 'fence', stray, reason };
}
