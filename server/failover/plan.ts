import { z } from 'zod';
import type { CandidateChoice } from '../../core/candidate';
import { describeSafety, type CandidateSafety } from '../../core/candidate-safety';
import type { Incident } from '../../core/op/journal';
import { alertOps, type MasterChange } from '../../core/ops/commit';
import { ZkmhaError } from '../../core/errors';
import { MysqlError, classifyMysqlError, type MysqlErrorKind } from '../../core/mysql/connection';
import type { HaproxyRecord, HistoryRecord, TaskRecord } from '../../core/records';
import { alertOf, member, type GroupView, type Versioned } from '../../core/view';
import type { MultiOp } from '../../core/zk/client';
import type { ZkPaths } from '../../core/zk/paths';
import { FAILOVER_ALERT } from '../detect';

/**
 * The pure half of the failover (design §5.2–§5.8): its step names, what it keeps in
 * task.detail, which replicas it re-points, what its commit writes, and what a step's error
 * means — all decided from values (a GroupView, the task, a typed error), no I/O. The steps
 * that act on them are in ./steps.ts, the runner loop in ./run.ts.
 */
export const FAILOVER_STEPS = [
  'fence',
  'choose',
  'drain',
  'catchup',
  'append',
  'promote',
  'repoint',
  'commit',
] as const;
export type FailoverStep = (typeof FAILOVER_STEPS)[number];

const stepSchema = z.object({ name: z.string(), ms: z.number().nonnegative(), ok: z.boolean() });

/** One candidate given up by this failover, and why (task.detail.exclusions, the history). */
const exclusionSchema = z.object({
  node: z.string(),
  reason: z.enum(['refused', 'timed-out', 'gone-before-commit']),
  step: z.string(),
  error: z.string(),
  at: z.number(),
});
export type Exclusion = z.infer<typeof exclusionSchema>;

/** What the failover keeps in task.detail between steps (and across workers). */
const detailSchema = z
  .object({
    how: z.string().optional(),
    detectedAt: z.number().optional(),
    steps: z.array(stepSchema).default([]),
    /** The nodes the choice passes over now (reset when they leave no candidate). */
    excluded: z.array(z.string()).default([]),
    /** Every exclusion of this failover, with its reason (never reset: the audit trail). */
    exclusions: z.array(exclusionSchema).default([]),
    choiceReason: z.string().optional(),
    catchUpFrom: z.object({ node: z.string(), received: z.string() }).nullable().optional(),
    drainTarget: z.string().optional(),
    /** When the drain had stopped the IO threads, and whether on every replica (old-master-gate.ts). */
    ioStoppedAt: z.number().optional(),
    allIoStopped: z.boolean().optional(),
    /** Why the candidate was made writable when it was (old-master-gate.ts), and what it waited. */
    writableGate: z.object({ why: z.string(), waitedMs: z.number().nonnegative() }).optional(),
    sourceTarget: z.string().optional(),
    gtidAtPromotion: z.string().optional(),
    /** The append outcome (server/failover/append.ts AppendOutcome, with a summary line). */
    appended: z.record(z.unknown()).optional(),
    /** Local clock (ms) when the candidate became writable. */
    promotedAt: z.number().optional(),
    repointed: z.array(z.string()).optional(),
    repointFailed: z.record(z.string()).optional(),
    lastError: z.object({ step: z.string(), message: z.string(), at: z.number() }).optional(),
    /**
     * Whether the candidate provably holds every acknowledged commit (core/candidate-safety.ts),
     * as decided at the choice and, when that depended on the append, after it.
     */
    safety: z.record(z.unknown()).optional(),
    /** Replicas a blocked failover's candidate caught up from: still "replicating from the old master's data". */
    formerSources: z.array(z.string()).default([]),
    /** The old master's MySQL fencing is still to be done (in parallel with the choice). */
    fenceMysql: z.boolean().optional(),
    attempts: z.number().int().nonnegative().default(0),
  })
  .passthrough();
export type FailoverDetail = z.infer<typeof detailSchema>;

/** The task's detail, typed; a malformed one reads as empty (defaults). */
export function parseDetail(task: TaskRecord): FailoverDetail {
  const r = detailSchema.safeParse(task.detail);
  return r.success ? r.data : detailSchema.parse({});
}

// --- errors, by type ------------------------------------------------------------------------------

/** The choice found no replica that may be promoted (`why` is the chooser's reason and detail). */
export class NoCandidate extends Error {
  override readonly name = 'NoCandidate';
}

/**
 * Why a candidate was given up before any route named it (issue 11 hole 1), as task/ and
 * history record it: `refused` — nothing listens, its mysqld is down; `timed-out` — it did not
 * answer within the step's deadline (hung, or cut off by a partition; a drain that answers and
 * progresses is neither: it is waited for); `gone-before-commit` — promoted, then lost before the
 * commit could name it (commitGate).
 */
export type ExclusionReason = 'refused' | 'timed-out' | 'gone-before-commit';

/**
 * The candidate itself did not serve an operation on its own connection: it refused (its mysqld
 * is down) or did not answer within the deadline (a query or connect timeout, or a step's
 * withTimeout). Thrown only around operations on the candidate's own connection (candidateError),
 * so an error from another node (the catch-up source, say) is never mistaken for it. The message
 * is the MySQL error's.
 */
export class CandidateLost extends Error {
  override readonly name = 'CandidateLost';
  constructor(
    readonly candidate: string,
    readonly reason: 'refused' | 'timed-out',
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/**
 * Pure: what an error of an operation on the candidate's own connection means. A refusal or a
 * timeout — of the connection, of a query, or of a deadline put on the operation (core/timeout.ts
 * withTimeout with 'MYSQL_TIMEOUT') — is the candidate lost; anything else (an SQL error, a lost
 * lock, a ZooKeeper error while the drain saves its progress) stays what it is.
 */
export function candidateError(candidate: string, err: unknown): unknown {
  if (err instanceof ZkmhaError && !(err instanceof MysqlError) && err.code !== 'MYSQL_TIMEOUT') return err;
  const kind = classifyMysqlError(err);
  if (kind === 'refused') return new CandidateLost(candidate, 'refused', err);
  if (kind === 'timeout') return new CandidateLost(candidate, 'timed-out', err);
  return err;
}

/**
 * Pure: the deadline of one round trip with the candidate (a statement that does no waiting of
 * its own): the bound the commit's last look at it always had. A healthy mysqld answers such a
 * statement in milliseconds even under load; STOP SLAVE IO_THREAD, the slowest, is bounded at
 * ~1 s by rpl_semi_sync_slave_kill_conn_timeout. Waits (MASTER_GTID_WAIT) keep their own bound
 * plus a margin, and a drain keeps waiting while apply progresses (core/ops/drain.ts).
 */
export function candidateAnswerMs(connectTimeoutMs: number): number {
  return Math.max(1000, 2 * connectTimeoutMs);
}

/**
 * No candidate provably holds every acknowledged commit and the policy says not to promote
 * (core/candidate-safety.ts 'blocked'): alert `failover-blocked`, choose again later.
 */
export class FailoverBlocked extends Error {
  override readonly name = 'FailoverBlocked';
  constructor(readonly safety: Extract<CandidateSafety, { kind: 'blocked' }>) {
    super(describeSafety(safety));
  }
}

/** The candidate as asked right before the commit multi. */
export type CandidateCheck =
  | { readonly kind: 'answered'; readonly readOnly: boolean }
  | { readonly kind: 'failed'; readonly errorKind: MysqlErrorKind; readonly error: string };

export type CommitGate =
  /** Writable and answering: commit. */
  | { readonly kind: 'commit' }
  /**
   * Gone (refused: mysqld down; silent: host down or hung): committing would route writes to a dead
   * node and then anti-flap would hold the next failover back. No route names it yet: exclude it
   * and choose again, like a candidate lost before its promotion.
   */
  | { readonly kind: 'rechoose'; readonly why: string }
  /**
   * Answers but read-only (restarted with read_only=ON, or fenced by hand): it is still the node
   * that holds everything; promote it again (idempotent) before committing.
   */
  | { readonly kind: 'repromote'; readonly why: string }
  /** Answered with some other error: cannot tell; the step fails and is retried. */
  | { readonly kind: 'retry'; readonly why: string };

/** Pure: whether the commit may name `candidate`, from one direct look at it. */
export function commitGate(candidate: string, c: CandidateCheck): CommitGate {
  if (c.kind === 'answered')
    return c.readOnly
      ? { kind: 'repromote', why: `candidate ${candidate} is read-only again before the commit` }
      : { kind: 'commit' };
  switch (c.errorKind) {
    case 'refused':
    case 'timeout':
      return { kind: 'rechoose', why: `candidate ${candidate} is gone before the commit: ${c.error}` };
    case 'auth':
    case 'other':
      return {
        kind: 'retry',
        why: `candidate ${candidate} could not be checked before the commit: ${c.error}`,
      };
  }
}

/** Thrown by the commit step when commitGate says anything but 'commit'. */
export class CandidateNotCommittable extends Error {
  override readonly name = 'CandidateNotCommittable';
  constructor(readonly gate: Exclude<CommitGate, { kind: 'commit' }>) {
    super(gate.why);
  }
}

/** What to do after a step threw (the runner's 'failed'); every kind records the failure. */
export type FailureAction =
  /** No replica can be promoted now: the no-candidate alert; retried later. */
  | { readonly kind: 'no-candidate'; readonly why: string }
  /**
   * The policy does not let it promote (replicas unanswered): the failover-blocked alert; the
   * choice is made again later (with every replica asked again), from 'choose'.
   */
  | { readonly kind: 'blocked'; readonly safety: FailoverBlocked['safety'] }
  /**
   * The candidate is gone (refused) or did not answer within its step's deadline (timed out),
   * and no route names it: exclude it and go back to 'choose'. `fenceCandidate`: it was (or may
   * have been) promoted, so make it read-only should it answer.
   */
  | { readonly kind: 'rechoose'; readonly reason: ExclusionReason; readonly fenceCandidate: boolean }
  /** The candidate answers read-only before the commit: record 'promote' as the next step. */
  | { readonly kind: 'repromote' }
  /** Anything else: the step stays recorded and is retried. */
  | { readonly kind: 'retry' };

/** The steps before the route names the candidate, where losing it means choosing again. */
const BEFORE_ROUTE: readonly FailoverStep[] = ['drain', 'catchup', 'append', 'promote'];

/** Pure: how the failover answers `err`, thrown by `step`. */
export function classifyFailure(step: FailoverStep, err: unknown): FailureAction {
  if (err instanceof NoCandidate) return { kind: 'no-candidate', why: err.message };
  if (err instanceof FailoverBlocked) return { kind: 'blocked', safety: err.safety };
  if (err instanceof CandidateLost && BEFORE_ROUTE.includes(step))
    return {
      kind: 'rechoose',
      reason: err.reason,
      // A promotion that timed out may still run when the candidate resumes (read_only=OFF was
      // sent): fence it should it answer. A refused one never ran.
      fenceCandidate: step === 'promote' && err.reason === 'timed-out',
    };
  if (err instanceof CandidateNotCommittable) {
    if (err.gate.kind === 'rechoose')
      return { kind: 'rechoose', reason: 'gone-before-commit', fenceCandidate: true };
    if (err.gate.kind === 'repromote') return { kind: 'repromote' };
  }
  return { kind: 'retry' };
}

/**
 * Pure: the detail with `e.node` excluded from the choice and the exclusion kept with its reason;
 * the catch-up source chosen with it goes too (the next choice decides again).
 */
export function excludeCandidate(detail: FailoverDetail, e: Exclusion): FailoverDetail {
  return {
    ...detail,
    excluded: detail.excluded.includes(e.node) ? detail.excluded : [...detail.excluded, e.node],
    exclusions: [...detail.exclusions, e],
    catchUpFrom: null,
  };
}

/**
 * Pure: nodes given up for not answering (timed out) in this failover and not chosen since: the
 * drain does not wait to stop their IO threads and the re-pointing leaves them to the workers'
 * upkeep (server/actions/repoint.ts), so a hung node costs the new master no further seconds.
 */
export function unanswering(detail: FailoverDetail): string[] {
  const timedOut = detail.exclusions.filter((e) => e.reason === 'timed-out').map((e) => e.node);
  return [...new Set(timedOut)].filter((n) => detail.excluded.includes(n));
}

/** Every node this failover excluded at some point: replicas following one still hold the old master's data. */
export function everExcluded(detail: FailoverDetail): string[] {
  return [...new Set([...detail.excluded, ...detail.exclusions.map((e) => e.node)])];
}

export interface ExcludingChoice {
  readonly choice: CandidateChoice;
  /** The exclusions left no candidate and were dropped (the choice was made without them). */
  readonly reset: boolean;
}

/**
 * Pure: the choice without the excluded nodes; when that leaves none, the choice again without
 * exclusions — a node given up earlier that answers again may be the only one to promote, and a
 * failover must keep trying rather than wait for a person (issue 11 hole 1). A node still
 * silent or refusing is not eligible anyway (unreachable).
 */
export function chooseExcluding(
  choose: (exclude: readonly string[]) => CandidateChoice,
  excluded: readonly string[],
): ExcludingChoice {
  const first = choose(excluded);
  if (first.kind === 'chosen' || excluded.length === 0) return { choice: first, reset: false };
  return { choice: choose([]), reset: true };
}

// --- failover-stuck (settings.failoverTimeoutMs) ------------------------------------------------------

/** The alert a failover raises when it has not committed within settings.failoverTimeoutMs. */
export const STUCK_ALERT = 'failover-stuck' as const;

/** Pure: milliseconds until a failover begun at `startedAt` counts as stuck (<= 0: it is). */
export function stuckInMs(startedAt: number, failoverTimeoutMs: number, now: number): number {
  return startedAt + failoverTimeoutMs - now;
}

/**
 * `watch_down/<group>__failover-stuck` + a failover-stuck history event, once per epoch: the
 * failover has not committed within `timeoutMs` and goes on trying; where it is and what it
 * excluded, so a person can see what holds it. The commit deletes it.
 */
export function stuckIncident(
  task: TaskRecord,
  detail: FailoverDetail,
  timeoutMs: number,
  now: number,
): Incident {
  const epoch = task.epoch!;
  const info = {
    epoch,
    oldMaster: task.oldMaster,
    candidate: task.candidate,
    step: task.step,
    startedAt: task.startedAt,
    failoverTimeoutMs: timeoutMs,
    elapsedMs: now - task.startedAt,
    attempts: detail.attempts,
    lastError: detail.lastError ?? null,
    exclusions: detail.exclusions,
  };
  return {
    alert: STUCK_ALERT,
    kind: STUCK_ALERT,
    detail: {
      ...info,
      note: `the failover has not committed within failoverTimeoutMs (${timeoutMs} ms); writes stay cut (haproxy write: null) while it keeps trying`,
    },
    history: (at) => ({
      kind: STUCK_ALERT,
      from: task.oldMaster,
      to: task.candidate,
      epoch,
      startedAt: task.startedAt,
      endedAt: at,
      steps: detail.steps,
      detail: info,
    }),
    same: (prev) => prev.record.detail.epoch === epoch,
  };
}

// --- what the steps act on --------------------------------------------------------------------------

/** The read pool of the fencing route: the current one without the old master. */
export function fencingRead(route: Versioned<HaproxyRecord> | null, oldMaster: string): string[] {
  return (route?.record.read ?? []).filter((n) => n !== oldMaster);
}

/** Replicas to re-point: every member but the candidate, the old master and nodes awaiting rejoin. */
export function repointTargets(view: GroupView, candidate: string, oldMaster: string): string[] {
  return view.members
    .filter((m) => m.node !== candidate && m.node !== oldMaster && m.rejoin === null)
    .map((m) => m.node);
}

export interface CommitInput {
  readonly paths: ZkPaths;
  /** A fresh view: the commit is compare-and-set on its versions. */
  readonly view: GroupView;
  readonly task: Versioned<TaskRecord>;
  readonly detail: FailoverDetail;
  readonly candidate: string;
  readonly workerId: string;
  /** Every step's record, the commit's own included. */
  readonly steps: HistoryRecord['steps'];
  readonly now: number;
  /** accept_loss/<group> as read (any epoch): deleted with the commit, so it is used once. */
  readonly acceptLoss?: { readonly version: number } | null;
}

/**
 * Pure: the failover's commit (core/ops/commit.ts commitMasterChange): master/ at epoch+1, the
 * route with the re-pointed replicas that are not drained, the history event with the timeline,
 * rejoin/<old master> when it is still a member, the task deleted, and the
 * `watch_down/<group>__failover` alert that anti-flap looks for.
 */
export function failoverCommit(c: CommitInput): MasterChange {
  const { view, detail, candidate, now } = c;
  const task = c.task.record;
  const epoch = task.epoch!;
  const oldMaster = task.oldMaster!;
  const drained = new Set(
    view.members.filter((m) => m.slaveDown?.record.drained === true).map((m) => m.node),
  );
  const read = (detail.repointed ?? []).filter((n) => !drained.has(n));
  const prevAlert = alertOf(view, FAILOVER_ALERT);
  const old = member(view, oldMaster);
  const safety = detail.safety as CandidateSafety | undefined;
  return {
    group: view.group,
    newMaster: candidate,
    epoch,
    reason: 'failover',
    masterVersion: view.master!.version,
    route: { read, version: view.route?.version ?? null },
    history: {
      kind: 'failover',
      from: oldMaster,
      to: candidate,
      startedAt: task.startedAt,
      endedAt: now,
      steps: c.steps,
      ...(safety?.kind === 'risk' ? { lostTransactions: describeSafety(safety) } : {}),
      detail: {
        how: detail.how,
        /** Which rule of core/candidate-safety.ts let it promote (issue 10 §2). */
        safety: safety !== undefined ? { ...safety, summary: describeSafety(safety) } : null,
        detectedAt: detail.detectedAt,
        choice: detail.choiceReason,
        /** Candidates given up on the way, with why (issue 11 hole 1). */
        exclusions: detail.exclusions,
        catchUpFrom: detail.catchUpFrom ?? null,
        repointFailed: detail.repointFailed ?? {},
        gtidAtPromotion: detail.gtidAtPromotion ?? '',
        worker: c.workerId,
        /** What the old master's agent appended (server/failover/append.ts), or why not. */
        appended: detail.appended ?? null,
        timeline: {
          detectedAt: detail.detectedAt ?? null,
          startedAt: task.startedAt,
          promotedAt: detail.promotedAt ?? null,
          committedAt: now,
        },
      },
    },
    ...(old !== undefined
      ? {
          rejoin: {
            node: oldMaster,
            record: {
              group: view.group,
              newMaster: candidate,
              epoch,
              promotedAt: now,
              gtidAtPromotion: detail.gtidAtPromotion ?? '',
            },
            version: old.rejoin?.version ?? null,
          },
        }
      : {}),
    taskVersion: c.task.version,
    extraOps: [
      ...alertOps(
        c.paths,
        view.group,
        FAILOVER_ALERT,
        {
          kind: FAILOVER_ALERT,
          at: now,
          detail: {
            epoch,
            from: oldMaster,
            to: candidate,
            ack: 'delete this alert (mha alerts --clear) to allow another automatic failover within the block period',
          },
        },
        prevAlert?.version ?? null,
      ),
      ...repointFailedOps(c, candidate, epoch),
      // Committed: the failover is no longer stuck (run.ts also deletes one raised meanwhile).
      ...stuckClearOps(c),
      // One-shot: whichever epoch it named, it is spent (a stale one must not promote a later failover).
      ...(c.acceptLoss != null
        ? [{ op: 'delete' as const, path: c.paths.acceptLoss(view.group), version: c.acceptLoss.version }]
        : []),
    ],
    now,
  };
}

function stuckClearOps(c: CommitInput): MultiOp[] {
  const a = alertOf(c.view, STUCK_ALERT);
  return a !== undefined
    ? [{ op: 'delete', path: c.paths.watchDown(c.view.group, STUCK_ALERT), version: a.version }]
    : [];
}

/**
 * `watch_down/<group>__repoint-failed` naming the replicas the failover could not re-point, in the
 * commit's multi, so the workers retry them until they follow (server/actions/repoint.ts).
 */
function repointFailedOps(c: CommitInput, candidate: string, epoch: number): MultiOp[] {
  const failed = c.detail.repointFailed ?? {};
  if (Object.keys(failed).length === 0) return [];
  return alertOps(
    c.paths,
    c.view.group,
    'repoint-failed',
    {
      kind: 'repoint-failed',
      at: c.now,
      detail: {
        epoch,
        master: candidate,
        nodes: { ...failed },
        note: `the failover could not re-point these replicas to ${candidate}; the server workers keep trying`,
      },
    },
    alertOf(c.view, 'repoint-failed')?.version ?? null,
  );
}

// --- the incidents it records ------------------------------------------------------------------------

/**
 * `watch_down/<group>__failover-failed` + a failover-failed history event, once per
 * epoch/step/error; `exclusion` when the step's failure gave the candidate up (and why).
 */
export function failedIncident(
  task: TaskRecord,
  detail: FailoverDetail,
  step: string,
  error: string,
  exclusion?: Exclusion,
): Incident {
  const epoch = task.epoch!;
  const excluded =
    exclusion !== undefined ? { excluded: { node: exclusion.node, reason: exclusion.reason } } : {};
  return {
    alert: 'failover-failed',
    kind: 'failover-failed',
    detail: { epoch, step, error, oldMaster: task.oldMaster, candidate: task.candidate, ...excluded },
    history: (now) => ({
      kind: 'failover-failed',
      from: task.oldMaster,
      to: task.candidate,
      epoch,
      startedAt: task.startedAt,
      endedAt: now,
      steps: [...detail.steps, { name: step, ms: 0, ok: false }],
      detail: { step, error, ...excluded },
    }),
    same: (prev) =>
      prev.record.detail.epoch === epoch &&
      prev.record.detail.step === step &&
      prev.record.detail.error === error,
  };
}

/** A failover-blocked history event: the failover did not promote, and why. */
function blockedHistory(
  task: TaskRecord,
  detail: FailoverDetail,
  why: Record<string, unknown>,
): Incident['history'] {
  return (now) => ({
    kind: 'failover-blocked',
    from: task.oldMaster,
    to: null,
    epoch: task.epoch!,
    startedAt: task.startedAt,
    endedAt: now,
    steps: detail.steps,
    detail: why,
  });
}

/** `watch_down/<group>__no-candidate` + a failover-blocked history event, once per epoch and reason. */
export function noCandidateIncident(task: TaskRecord, detail: FailoverDetail, why: string): Incident {
  const epoch = task.epoch!;
  return {
    alert: 'no-candidate',
    kind: 'no-candidate',
    detail: { epoch, oldMaster: task.oldMaster, why },
    history: blockedHistory(task, detail, { reason: 'no-candidate', why }),
    same: (prev) => prev.record.detail.epoch === epoch && prev.record.detail.why === why,
  };
}

/**
 * `watch_down/<group>__failover-blocked` + a failover-blocked history event, once per epoch and
 * set of unanswered replicas: it names them and says how a person may decide instead.
 */
export function blockedIncident(
  task: TaskRecord,
  detail: FailoverDetail,
  safety: FailoverBlocked['safety'],
  group: string,
): Incident {
  const epoch = task.epoch!;
  const unanswered = safety.unanswered.map((u) => u.node);
  const key = [...unanswered].sort().join(',');
  const note =
    `no replica provably holds every acknowledged transaction: ${unanswered.join(', ')} did not answer ` +
    `(semi-sync policy required). The failover keeps asking; to promote anyway, accepting that ` +
    `transactions acknowledged only by them may be lost: mha failover ${group} --accept-loss`;
  return {
    alert: 'failover-blocked',
    kind: 'failover-blocked',
    detail: {
      epoch,
      oldMaster: task.oldMaster,
      rule: safety.rule,
      unanswered,
      errors: safety.unanswered,
      note,
    },
    history: blockedHistory(task, detail, {
      reason: 'replicas-unanswered',
      rule: safety.rule,
      unanswered,
      errors: safety.unanswered,
    }),
    same: (prev) =>
      prev.record.detail.epoch === epoch &&
      Array.isArray(prev.record.detail.unanswered) &&
      [...(prev.record.detail.unanswered as string[])].sort().join(',') === key,
  };
}
