import type { AlertKind, TaskRecord, WhiteRecord } from '../core/records';
import { diagnoseRecords, type RecordDiagnosis } from '../core/repair';
import { alertOf, member, type GroupView } from '../core/view';

/**
 * Names what is wrong with a group before anything is done about it (style: orchestrator's
 * analyses). Pure: a function of the ZooKeeper snapshot and of what the worker observed
 * directly (the confirmation probe of the old master, the clock).
 */

/** Outcome of connecting to the old master directly (design §5.3). */
export type MasterProbe =
  /** Nothing listens: mysqld is down. Definitive. */
  | { readonly kind: 'refused'; readonly error: string }
  /** No answer within the confirmation budget (hung mysqld, dead or partitioned host). */
  | { readonly kind: 'unreachable'; readonly error: string }
  /** mysqld answered (a query, or at least an authentication error). */
  | { readonly kind: 'alive'; readonly readOnly: boolean | null; readonly detail: string };

export interface Observations {
  readonly now: number;
  /** The probe, when one was made for this decision. */
  readonly probe?: MasterProbe;
  /**
   * Since when the caller has seen online/<master> say `readOnly: true` for this master and epoch
   * with no task open (`readOnlyMasterKey`); absent when it has not (or does not track it).
   */
  readonly masterReadOnlySince?: number;
  /** How long a read-only master is left alone before it is a 'master-read-only' verdict. */
  readonly readOnlyGraceMs?: number;
}

/** Default grace for a master whose heartbeat says read-only (2 × the default check interval). */
export const READ_ONLY_GRACE_MS = 1000;

/**
 * How the old master was found dead. 'self-fenced': it answers but is read-only with no
 * heartbeat — its agent fenced it after losing ZooKeeper (design §4), so the group has no
 * writable master until one is promoted.
 */
export type DeadHow = 'refused' | 'agent-reports-down' | 'unreachable' | 'self-fenced';

export type Verdict =
  /** No usable group / master record: nothing to decide (problems are reported elsewhere). */
  | { readonly kind: 'not-managed'; readonly why: string }
  /** A failover is recorded in task/<group>: resume it from its step. */
  | { readonly kind: 'resume-failover'; readonly task: TaskRecord }
  /**
   * A switchover / add run by the CLI is open: left alone while its process holds lock/<group>;
   * resolved by the worker once nobody has held it for a while (server/abandoned.ts).
   */
  | { readonly kind: 'operation-in-progress'; readonly task: TaskRecord }
  | { readonly kind: 'master-healthy'; readonly master: string }
  /**
   * master/ or haproxy/ is invalid, missing or does not match the other, with no operation open
   * (core/repair.ts): rewritten from the last good state under the lock, or alert only.
   */
  | { readonly kind: 'records-invalid'; readonly diagnosis: RecordDiagnosis }
  /**
   * The master's heartbeat is there but says read_only=ON, with no operation open, for longer than
   * the grace period: nobody can write (a self-fence that outlived its ZooKeeper outage — the same
   * session survived, so online/ never vanished — or a fence by hand). `white`: maintenance, alert only.
   */
  | {
      readonly kind: 'master-read-only';
      readonly master: string;
      readonly epoch: number;
      readonly since: number;
      readonly white: boolean;
    }
  /**
   * online/<master> is gone: connect to it before deciding, for at most `confirmMs` (shorter when
   * its agent already found it silent: confirmBudgetMs).
   */
  | { readonly kind: 'needs-confirmation'; readonly oldMaster: string; readonly confirmMs: number }
  /** Maintenance: no automatic failover (design §5.1). */
  | { readonly kind: 'white-listed'; readonly oldMaster: string; readonly white: WhiteRecord | null }
  /** The heartbeat is gone but mysqld answers: alert and keep watching (design §5.3). */
  | { readonly kind: 'heartbeat-lost-mysql-alive'; readonly oldMaster: string; readonly probe: MasterProbe }
  /** Dead, but the group failed over recently and nobody acknowledged it (design §5.9). */
  | {
      readonly kind: 'blocked-by-antiflap';
      readonly oldMaster: string;
      readonly lastFailoverEpoch: number;
      readonly lastFailoverAt: number;
      readonly until: number;
      readonly how: DeadHow;
    }
  /** Dead, and no member could ever be promoted (all priority 0 / no replica at all). */
  | { readonly kind: 'no-candidate'; readonly oldMaster: string; readonly why: string; readonly how: DeadHow }
  | { readonly kind: 'master-dead'; readonly oldMaster: string; readonly how: DeadHow };

export type VerdictKind = Verdict['kind'];

/** Alert kind written after every automatic failover; deleting it acknowledges the failover. */
export const FAILOVER_ALERT = 'failover' satisfies AlertKind;

/**
 * Anti-flap (design §5.9): the last master change was an automatic failover less than
 * `recoveryBlockSeconds` ago and its `watch_down/<group>__failover` alert is still there (not
 * acknowledged). Acknowledging = deleting that alert (`mha alerts --clear <group>`).
 */
export function antiFlapBlock(
  view: GroupView,
  now: number,
): { epoch: number; at: number; until: number } | null {
  const m = view.master?.record;
  if (m === undefined || m.reason !== 'failover') return null;
  const blockMs = (view.meta?.settings.recoveryBlockSeconds ?? 300) * 1000;
  const until = m.since + blockMs;
  if (now >= until) return null;
  const ack = alertOf(view, FAILOVER_ALERT);
  if (ack === undefined || ack.record.detail.epoch !== m.epoch) return null;
  return { epoch: m.epoch, at: m.since, until };
}

export function detect(view: GroupView, obs: Observations): Verdict {
  if (view.invalid.meta) return { kind: 'not-managed', why: `meta_group/${view.group} is invalid` };
  if (view.meta === null) return { kind: 'not-managed', why: `meta_group/${view.group} does not exist` };
  if (view.invalid.task)
    return {
      kind: 'not-managed',
      why: `task/${view.group} is invalid: not acting until an operator fixes it`,
    };
  if (view.task !== null) {
    const t = view.task.record;
    return t.kind === 'failover'
      ? { kind: 'resume-failover', task: t }
      : { kind: 'operation-in-progress', task: t };
  }
  const diagnosis = diagnoseRecords(view);
  if (diagnosis !== null) return { kind: 'records-invalid', diagnosis };
  if (view.invalid.master) return { kind: 'not-managed', why: `master/${view.group} is invalid` };
  if (view.master === null)
    return { kind: 'not-managed', why: `master/${view.group} does not exist (group not set up yet)` };
  if (view.invalid.route) return { kind: 'not-managed', why: `haproxy/${view.group} is invalid` };

  const oldMaster = view.master.record.node;
  const m = member(view, oldMaster);
  if (m?.online) {
    const since = obs.masterReadOnlySince;
    if (
      m.online.readOnly &&
      since !== undefined &&
      obs.now - since >= (obs.readOnlyGraceMs ?? READ_ONLY_GRACE_MS)
    )
      return {
        kind: 'master-read-only',
        master: oldMaster,
        epoch: view.master.record.epoch,
        since,
        white: view.white !== null || view.invalid.white,
      };
    return { kind: 'master-healthy', master: oldMaster };
  }

  // An invalid white record is still someone's intent to hold automation back.
  if (view.white !== null || view.invalid.white)
    return { kind: 'white-listed', oldMaster, white: view.white };

  let how: DeadHow;
  if (m?.agent?.mysqldDown === true) how = 'agent-reports-down';
  else if (obs.probe === undefined)
    return {
      kind: 'needs-confirmation',
      oldMaster,
      confirmMs: confirmBudgetMs(view.meta.settings.confirmMs, m?.agent?.unansweredMs),
    };
  else if (obs.probe.kind === 'alive') {
    // A writable master without heartbeat is serving: alert only. A read-only one is serving
    // nobody (its agent fenced it, or it was fenced by hand): leaving it would keep the group
    // unwritable for good, so it is failed over like a dead one.
    if (obs.probe.readOnly !== true)
      return { kind: 'heartbeat-lost-mysql-alive', oldMaster, probe: obs.probe };
    how = 'self-fenced';
  } else how = obs.probe.kind;

  const block = antiFlapBlock(view, obs.now);
  if (block !== null)
    return {
      kind: 'blocked-by-antiflap',
      oldMaster,
      lastFailoverEpoch: block.epoch,
      lastFailoverAt: block.at,
      until: block.until,
      how,
    };

  const possible = view.members.filter(
    (x) =>
      x.node !== oldMaster &&
      x.host !== null &&
      x.host.priority > 0 &&
      x.host.banned === undefined &&
      x.rejoin === null,
  );
  if (possible.length === 0) {
    const why =
      view.members.length <= 1
        ? 'the group has no replica'
        : 'every replica has priority 0, no meta_host record, a ban (mha unban) or a pending rejoin';
    return { kind: 'no-candidate', oldMaster, why, how };
  }
  return { kind: 'master-dead', oldMaster, how };
}

/**
 * The server's own silence that, on top of an agent's report of failAfter consecutive timed-out
 * checks (at least 3 × 200 ms), confirms a hung master. The agent sees its mysqld with no network
 * between them; the server only has to rule out that the silence is the agent's alone (issue 11
 * hole 2: the confirmation must not repeat what the agent already established).
 */
export const AGENT_BACKED_CONFIRM_MS = 400;

/**
 * How long the server probes a master whose heartbeat vanished: the group's confirmMs, or
 * AGENT_BACKED_CONFIRM_MS (if shorter) when its agent reports it silent (`unansweredMs`). An
 * answer during the probe still means alive, whatever the agent said.
 */
export function confirmBudgetMs(confirmMs: number, agentUnansweredMs: number | undefined): number {
  return agentUnansweredMs === undefined ? confirmMs : Math.min(confirmMs, AGENT_BACKED_CONFIRM_MS);
}

/**
 * What a read-only master is tracked by (`Observations.masterReadOnlySince`): `<node>@<epoch>` while
 * no task is open, master/ and haproxy/ are valid and online/<master> says readOnly=true; null
 * otherwise (an operation's own fence happens with its task present, so it never starts the clock).
 */
export function readOnlyMasterKey(view: GroupView): string | null {
  if (view.task !== null || view.invalid.task || view.invalid.master || view.invalid.route) return null;
  const m = view.master?.record;
  if (m === undefined) return null;
  return member(view, m.node)?.online?.readOnly === true ? `${m.node}@${m.epoch}` : null;
}

/** Maps the probe's raw outcome (error kind from core/mysql classifyMysqlError) to a MasterProbe. */
export function probeFrom(
  result:
    | { ok: true; readOnly: boolean }
    | { ok: false; kind: 'refused' | 'timeout' | 'auth' | 'other'; error: string },
): MasterProbe {
  if (result.ok) return { kind: 'alive', readOnly: result.readOnly, detail: 'answered a query' };
  switch (result.kind) {
    case 'refused':
      return { kind: 'refused', error: result.error };
    case 'auth':
      return {
        kind: 'alive',
        readOnly: null,
        detail: `answered with an authentication error: ${result.error}`,
      };
    case 'timeout':
    case 'other':
      return { kind: 'unreachable', error: result.error };
  }
}
