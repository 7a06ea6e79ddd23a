import { z } from 'zod';
import { describeSafety, type CandidateSafety } from '../../core/candidate-safety';
import type { Incident } from '../../core/op/journal';
import { alertOps, type MasterChange } from '../../core/ops/commit';
import type { MysqlErrorKind } from '../../core/mysql/connection';
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

/** What the failover keeps in task.detail between steps (and across workers). */
const detailSchema = z
  .object({
    how: z.string().optional(),
    detectedAt: z.number().optional(),
    steps: z.array(stepSchema).default([]),
    excluded: z.array(z.string()).default([]),
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
 * The candidate itself refused a connection (its mysqld is down) before any route named it.
 * Thrown only around operations on the candidate's own connection, so an error from another
 * node (the catch-up source, say) is never mistaken for it. The message is the MySQL error's.
 */
export class CandidateRefused extends Error {
  override readonly name = 'CandidateRefused';
  constructor(
    readonly candidate: string,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
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
   * The candidate is gone and no route names it: exclude it and go back to 'choose'.
   * `fenceCandidate`: it was promoted already, so make it read-only should it answer.
   */
  | { readonly kind: 'rechoose'; readonly fenceCandidate: boolean }
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
  if (err instanceof CandidateRefused && BEFORE_ROUTE.includes(step))
    return { kind: 'rechoose', fenceCandidate: false };
  if (err instanceof CandidateNotCommittable) {
    if (err.gate.kind === 'rechoose') return { kind: 'rechoose', fenceCandidate: true };
    if (err.gate.kind === 'repromote') return { kind: 'repromote' };
  }
  return { kind: 'retry' };
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
      // One-shot: whichever epoch it named, it is spent (a stale one must not promote a later failover).
      ...(c.acceptLoss != null
        ? [{ op: 'delete' as const, path: c.paths.acceptLoss(view.group), version: c.acceptLoss.version }]
        : []),
    ],
    now,
  };
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

/** `watch_down/<group>__failover-failed` + a failover-failed history event, once per epoch/step/error. */
export function failedIncident(
  task: TaskRecord,
  detail: FailoverDetail,
  step: string,
  error: string,
): Incident {
  const epoch = task.epoch!;
  return {
    alert: 'failover-failed',
    kind: 'failover-failed',
    detail: { epoch, step, error, oldMaster: task.oldMaster, candidate: task.candidate },
    history: (now) => ({
      kind: 'failover-failed',
      from: task.oldMaster,
      to: task.candidate,
      epoch,
      startedAt: task.startedAt,
      endedAt: now,
      steps: [...detail.steps, { name: step, ms: 0, ok: false }],
      detail: { step, error },
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
