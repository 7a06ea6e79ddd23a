import type { NodePosition } from '../core/candidate';
import { gtidContains } from '../core/gtid';
import { parseSwitchoverDetail } from '../core/ops/switchover';
import type { HaproxyRecord, MasterRecord, TaskRecord } from '../core/records';
import type { Versioned } from '../core/view';
import type { LockHolder } from '../core/zk/lock';

/**
 * Operations whose process died (pure decisions; server/resolve.ts acts on them).
 *
 * `mha switchover` and `mha add` write `task/<group>` while holding `lock/<group>`: the CLI takes
 * the lock first, writes the task, and releases the lock only after its commit deleted the task
 * (or after it deliberately left the task on a failure). So "a task exists and nobody holds the
 * lock" means its process is gone — killed, its host crashed, or its session expired — or it has
 * finished and left the task behind. Without a resolution the workers would call the group
 * `operation-in-progress` forever, with writes cut.
 *
 * 1. `abandonment` says when a task counts as abandoned. A grace period (one session timeout,
 *    counted from when a worker first saw the task unchanged with no lock holder) guards against:
 *    - a snapshot race: the task read, then the CLI commits (task deleted) and releases, then the
 *      lock read finds nobody — the next look, after the grace, no longer finds that task version;
 *    - a CLI that lost its session but still runs: it stops acting at 2/3 of its session timeout
 *      without an answer, before the ensemble drops its lock node; the grace covers a MySQL
 *      statement it had in flight then.
 *    Any change of the task (its id or version) or any lock holder starts the count again. A task
 *    that this worker itself took over earlier (its id in `worker`) is abandoned at once: this
 *    worker is evaluating, so it is not running it.
 *
 * 2. `resolveAbandoned` chooses the end state from the step recorded (core/ops/switchover.ts) and
 *    from MySQL observed directly (after the old master was fenced again, when the route is cut).
 *    The rules, safety first (design §9.1: never two writable routed nodes; §9.2: lose nothing):
 *    - Before the promotion (fence, catchup, rollback): ROLL BACK — the old master writable and
 *      routed again at the switchover's epoch, as the CLI's own rollback does. Every write went to
 *      the old master until now (the route is cut until the commit), so it holds every
 *      acknowledged transaction; undoing restores the state the operator started from, and a new
 *      `mha switchover` can be run. Finishing instead would mean waiting out a catch-up the CLI
 *      had not seen through.
 *    - After the promotion began (promote, commit — or a candidate found writable, since the
 *      'promote' record is written while the promotion runs): ROLL FORWARD — the CLI promotes only
 *      once the candidate executed the fenced old master's final position, the others and the old
 *      master are already being re-pointed to it: finishing (re-point, promote again, commit) is
 *      fewer changes than undoing. Only if the candidate holds that position (read from the old
 *      master, else the `target` recorded at 'catchup'); otherwise roll back if the old master
 *      holds everything, else alert only.
 *    - Old master unreachable before the promotion: it cannot be made writable, and nothing but a
 *      failover can restore writes: the task is handed to the failover procedure (which picks the
 *      replica that received the most) — unless its heartbeat is still there (the worker may be
 *      the one cut off: retry) or the group is in maintenance (white: no automatic failover).
 *    - Candidate unreachable after the promotion: roll back (the old master has everything: no
 *      write was routed to the candidate); both unreachable: alert only, retried.
 *    - `add`: alert only, never a guess — the group is not registered yet and what was done to
 *      its nodes cannot be judged from here.
 *    The executor still checks, right before it makes a node writable, that every other node that
 *    answers is read-only (an unreachable one is fenced by the route, which names one master).
 */

// --- 1. abandoned? ---------------------------------------------------------------------------------

/** When a worker first saw a task version with no lock holder. */
export interface OrphanMark {
  readonly key: string;
  readonly since: number;
}

export function taskKey(task: Versioned<TaskRecord>): string {
  return `${task.record.id}@${task.version}`;
}

export type Abandonment =
  /** A failover task: the workers resume those themselves. */
  | { readonly kind: 'not-applicable' }
  /** Someone holds lock/<group>: the operation is being worked on. */
  | { readonly kind: 'owner-active'; readonly owner: string }
  /** No holder, but not for long enough yet: look again at `until`. */
  | { readonly kind: 'grace'; readonly mark: OrphanMark; readonly until: number }
  | { readonly kind: 'abandoned'; readonly why: string };

export interface AbandonmentInput {
  readonly task: Versioned<TaskRecord>;
  readonly holder: LockHolder | null;
  /** What this worker noted on an earlier look (null: nothing). */
  readonly mark: OrphanMark | null;
  readonly now: number;
  readonly graceMs: number;
  /** This worker's id (a task it took over itself needs no grace). */
  readonly selfId: string;
}

export function abandonment(i: AbandonmentInput): Abandonment {
  const t = i.task.record;
  if (t.kind === 'failover') return { kind: 'not-applicable' };
  if (i.holder !== null) return { kind: 'owner-active', owner: i.holder.owner };
  if (t.worker === i.selfId)
    return { kind: 'abandoned', why: `this worker's own earlier attempt stopped at step '${t.step}'` };
  const key = taskKey(i.task);
  const mark = i.mark !== null && i.mark.key === key ? i.mark : { key, since: i.now };
  const until = mark.since + i.graceMs;
  if (i.now < until) return { kind: 'grace', mark, until };
  return {
    kind: 'abandoned',
    why: `nobody has held lock/ for ${i.now - mark.since} ms while task (${t.kind}, step '${t.step}', by ${t.worker}) stayed unchanged: its process is gone`,
  };
}

// --- 2. how to resolve -----------------------------------------------------------------------------

/** Steps after which the switchover is finished rather than undone (see module comment). */
const FORWARD_STEPS: ReadonlySet<string> = new Set(['promote', 'commit', 'abandoned-rollforward']);
/** Steps before the promotion, or of a rollback under way. */
const BACK_STEPS: ReadonlySet<string> = new Set(['fence', 'catchup', 'rollback', 'abandoned-rollback']);
/** Steps where a writable candidate means the promotion ran before its record landed. */
const UNDECIDED_STEPS: ReadonlySet<string> = new Set(['fence', 'catchup']);

export interface AbandonedFacts {
  readonly task: TaskRecord;
  readonly master: MasterRecord | null;
  readonly route: HaproxyRecord | null;
  /** master/ or haproxy/ exists but failed validation (never acted on, design §2). */
  readonly invalidRecords?: boolean;
  /** white/<group> is set (maintenance: no automatic failover). */
  readonly white: boolean;
  /** online/<old master> exists: its heartbeat client still sees a healthy mysqld. */
  readonly oldMasterOnline: boolean;
  /** Read directly from every member (old master and candidate included). */
  readonly positions: ReadonlyMap<string, NodePosition>;
}

export type Resolution =
  | { readonly kind: 'roll-back'; readonly why: string; readonly candidateReachable: boolean }
  | {
      readonly kind: 'roll-forward';
      readonly why: string;
      /** What the new master must hold (the old master's final gtid_binlog_pos). */
      readonly target: string;
      readonly oldMasterReachable: boolean;
    }
  | { readonly kind: 'hand-to-failover'; readonly why: string }
  /** Nothing safe to do: alert; `retry` when a later look may decide (a node may come back). */
  | { readonly kind: 'alert-only'; readonly why: string; readonly retry: boolean };

/** The switchover's fencing route is in place: haproxy/ at its epoch with `write: null`. */
export function routeIsCut(task: TaskRecord, route: HaproxyRecord | null): boolean {
  return route !== null && task.epoch !== undefined && route.epoch === task.epoch && route.write === null;
}

function contains(a: string, b: string): boolean | null {
  try {
    return gtidContains(a, b);
  } catch {
    return null;
  }
}

export function resolveAbandoned(f: AbandonedFacts): Resolution {
  const t = f.task;
  if (t.kind === 'add')
    return {
      kind: 'alert-only',
      retry: false,
      why: `mha add died at step '${t.step}': not guessing what it left on the nodes; check them, delete task/ and run mha add again`,
    };
  if (t.kind !== 'switchover')
    return { kind: 'alert-only', retry: false, why: `a ${t.kind} task is not resolved here` };
  const om = t.oldMaster;
  const cand = t.candidate;
  const epoch = t.epoch;
  if (f.invalidRecords === true)
    return { kind: 'alert-only', retry: true, why: 'master/ or haproxy/ is invalid: not acting on it' };
  if (om === null || cand === null || epoch === undefined)
    return { kind: 'alert-only', retry: false, why: 'the task names no old master, candidate or epoch' };
  if (f.master === null || f.master.node !== om || f.master.epoch !== epoch - 1)
    return {
      kind: 'alert-only',
      retry: false,
      why: `master/ (${f.master === null ? 'missing' : `${f.master.node} epoch ${f.master.epoch}`}) is not the switchover's starting point (${om} epoch ${epoch - 1}); settle with mha setmaster`,
    };
  if (f.route !== null && f.route.epoch > epoch)
    return {
      kind: 'alert-only',
      retry: false,
      why: `haproxy/ is at epoch ${f.route.epoch}, beyond the switchover's ${epoch}`,
    };
  if (!FORWARD_STEPS.has(t.step) && !BACK_STEPS.has(t.step))
    return { kind: 'alert-only', retry: false, why: `unknown switchover step '${t.step}'` };

  const o = f.positions.get(om);
  const c = f.positions.get(cand);
  const oUp = o !== undefined && o.reachable ? o : null;
  const cUp = c !== undefined && c.reachable ? c : null;
  const promoted = cUp !== null && !cUp.readOnly;
  const forward = FORWARD_STEPS.has(t.step) || (UNDECIDED_STEPS.has(t.step) && promoted);

  const toFailover = (why: string): Resolution => {
    const unreachable = `the old master ${om} is unreachable (${o !== undefined && !o.reachable ? o.error : 'not read'})`;
    if (f.oldMasterOnline)
      return {
        kind: 'alert-only',
        retry: true,
        why: `${why}, but ${unreachable} while its heartbeat is still there; looking again`,
      };
    if (f.white)
      return {
        kind: 'alert-only',
        retry: true,
        why: `${why}, but ${unreachable} and the group is in maintenance (white/): no automatic failover`,
      };
    return { kind: 'hand-to-failover', why: `${why}; ${unreachable}: failing over instead` };
  };

  const rollBack = (why: string): Resolution => {
    if (oUp === null) return toFailover(why);
    if (cUp !== null) {
      const ok = contains(oUp.gtidBinlogPos, cUp.gtidBinlogPos);
      if (ok !== true)
        return {
          kind: 'alert-only',
          retry: false,
          why:
            ok === null
              ? `${why}, but the positions of ${cand} (${cUp.gtidBinlogPos}) and ${om} (${oUp.gtidBinlogPos}) cannot be compared`
              : `${why}, but the candidate ${cand} (${cUp.gtidBinlogPos}) holds transactions the old master ${om} (${oUp.gtidBinlogPos}) lacks`,
        };
    }
    return { kind: 'roll-back', why, candidateReachable: cUp !== null };
  };
  if (!forward) return rollBack(`step '${t.step}' is before the promotion: rolling back`);

  // Roll forward.
  if (f.route !== null && f.route.write !== null && f.route.write !== cand)
    return {
      kind: 'alert-only',
      retry: false,
      why: `the promotion began but haproxy/ still routes writes to ${f.route.write}`,
    };
  const stage = FORWARD_STEPS.has(t.step) ? `step '${t.step}'` : `the candidate ${cand} is writable`;
  if (cUp === null) {
    if (oUp !== null)
      return rollBack(
        `${stage}, but the candidate ${cand} is unreachable (${c !== undefined && !c.reachable ? c.error : 'not read'}); no write was routed to it: rolling back`,
      );
    return {
      kind: 'alert-only',
      retry: true,
      why: `${stage}, but neither the candidate ${cand} nor the old master ${om} answers`,
    };
  }
  if (oUp !== null && !oUp.readOnly)
    return {
      kind: 'alert-only',
      retry: true,
      why: `the old master ${om} is still writable (fencing failed)`,
    };
  const recorded = parseSwitchoverDetail(t.detail).target;
  const target = oUp !== null ? oUp.gtidBinlogPos : recorded;
  if (target === undefined)
    return {
      kind: 'alert-only',
      retry: true,
      why: `${stage}; the old master ${om} is unreachable and its final position was not recorded`,
    };
  const has = contains(cUp.gtidBinlogPos, target);
  if (has === true)
    return {
      kind: 'roll-forward',
      why: `${stage}: the candidate ${cand} holds the old master's final position ${target === '' ? '(empty)' : target}: finishing the switchover`,
      target,
      oldMasterReachable: oUp !== null,
    };
  const lacks = `the candidate ${cand} (${cUp.gtidBinlogPos}) lacks the old master's final position ${target}${has === null ? ' (unreadable position)' : ''}`;
  if (oUp !== null) return rollBack(`${stage}, but ${lacks}: rolling back`);
  return { kind: 'alert-only', retry: true, why: `${stage}, but ${lacks} and the old master is unreachable` };
}

/** One line for logs and alerts. */
export function describeResolution(r: Resolution): string {
  switch (r.kind) {
    case 'roll-back':
      return `roll back: ${r.why}`;
    case 'roll-forward':
      return `roll forward: ${r.why}`;
    case 'hand-to-failover':
      return `hand over to the failover: ${r.why}`;
    case 'alert-only':
      return `alert only${r.retry ? ' (retried)' : ''}: ${r.why}`;
    default: {
      const never: never = r;
      return JSON.stringify(never);
    }
  }
}
