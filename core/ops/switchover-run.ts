import { ZkmhaError, errorMessage, isZkmhaError } from '../errors';
import { Journal, LostLock, recordIncident } from '../op/journal';
import { zkStore } from '../op/store';
import { decodeRecord, encodeRecord, haproxySchema, taskSchema, type TaskRecord } from '../records';
import { promoteSemiSync } from '../semisync';
import { delay } from '../timeout';
import { commitMasterChange, writeFencingRoute } from './commit';
import { existingGroup } from './group';
import { readGtidPositions } from './positions';
import type { OpsContext } from './promote';
import { refuse, step } from './step';
import {
  SWITCHOVER_FAILED_ALERT,
  StepTimer,
  fenceMaster,
  pickSwitchoverCandidate,
  repointAll,
  rollBack,
  type ProcedureEnv,
  type StepTiming,
  type SwitchoverStep,
} from './switchover';

export {
  SWITCHOVER_FAILED_ALERT,
  pickSwitchoverCandidate,
  type CandidatePick,
  type ProcedureEnv,
} from './switchover';

/**
 * The switchover procedure (`mha switchover`): a planned master change that loses no
 * transaction, built on core/ops (the same procedures as the server's failover):
 *
 *   lock/<group> → choose + pre-check the candidate (it replicates from the master and has caught up
 *   with it, before anything is cut) → task/<group> → fence: route `write: null` at epoch+1, then
 *   read_only=ON + kill client connections on the old master → wait until the candidate executed the
 *   old master's final gtid_binlog_pos (bounded by what is left of --max-pause-ms) → promote →
 *   one multi (master/ + haproxy/ at epoch+1, history, task deleted) → re-point the other replicas
 *   and the old master (GTID current_pos), the old master joining the read pool once it replicates.
 *
 * The write pause is the time from the fencing route to the committed new route. If the candidate
 * cannot catch up in time (or promotion fails) it rolls back: candidate replicating again, old
 * master writable and routed — at epoch+1, since routers never go back to a lower epoch.
 *
 * The lock is taken before task/<group> is written and released only after the task is deleted
 * (or deliberately left on a failure), so a task nobody holds the lock for belongs to a process
 * that is gone: a server worker then resolves it from the step recorded (core/ops/switchover.ts
 * lists them; the records that would cost write-pause time are written while the step runs). For
 * the same reason this command stops acting — no rollback either — once it lost the lock or finds
 * its task rewritten by a worker that took it over.
 *
 * Every step is bounded, so it finishes or rolls back. A failure after writes were cut leaves the
 * alert `watch_down/<group>__switchover-failed` (recordSwitchoverFailed: step, reason, and what it
 * rolled back to, if anything). It lives in core/ops, not cli/, so that the CLI file keeps only
 * arguments, lock, signals and printing (cli/ may import core/, never the reverse).
 */
export interface SwitchoverInput {
  readonly group: string;
  readonly to?: string;
  readonly maxPauseMs: number;
  /**
   * How long the candidate may take to catch up BEFORE writes are cut (default 10000); 0 skips
   * that wait and leaves everything to the --max-pause-ms budget.
   */
  readonly catchUpTimeoutMs?: number;
  /** Fault injection for tests (MHA_FAULT_SWITCHOVER_PAUSE_BEFORE_STEP=step:ms). */
  readonly pauseBeforeStep?: { readonly step: SwitchoverStep; readonly ms: number };
}

export type { StepTiming };

export interface SwitchoverResult {
  readonly group: string;
  readonly from: string;
  readonly to: string;
  readonly epoch: number;
  /** Route cut → new route committed. */
  readonly pauseMs: number;
  readonly reason: string;
  readonly steps: readonly StepTiming[];
  /** Re-pointing results per node (the old master included). */
  readonly repointed: Readonly<Record<string, { ok: true } | { ok: false; error: string }>>;
}

/** What the failure handler needs once writes were cut (the step is read when it fails). */
export interface CutWrites {
  readonly group: string;
  readonly oldMaster: string;
  readonly candidate: string;
  readonly epoch: number;
  step(): string;
}

/**
 * How a switchover that cut writes ended, for the alert (ZkmhaError details.outcome where known):
 *   restored          the fencing route could not be written; the old master is writable again
 *   master-read-only  ... and making the old master writable again failed too
 *   rolled-back       rolled back: the old master is writable and routed at the switchover's epoch
 *   rollback-failed   writes stay cut; task/ left for a server worker
 *   commit-failed     the candidate is promoted in MySQL, ZooKeeper does not say so; task/ left
 *   left-to-workers   the lock was lost or the task taken over; a server worker resolves it
 */
export type SwitchoverOutcome =
  'restored' | 'master-read-only' | 'rolled-back' | 'rollback-failed' | 'commit-failed' | 'left-to-workers';

/**
 * Writes (creates or overwrites) `watch_down/<group>__switchover-failed`. Best effort: ZooKeeper
 * trouble may be why the switchover failed; returns why the alert could not be written (the
 * caller says so next to the error), null when it was.
 */
export async function recordSwitchoverFailed(
  ctx: ProcedureEnv,
  cut: CutWrites,
  err: unknown,
): Promise<string | null> {
  const { zk, paths } = ctx;
  const path = paths.watchDown(cut.group, SWITCHOVER_FAILED_ALERT);
  const details = isZkmhaError(err) ? err.details : undefined;
  const outcome = typeof details?.outcome === 'string' ? details.outcome : 'failed';
  // The step recorded when it went wrong (a rollback records its own step after that).
  const step =
    typeof details?.failedStep === 'string'
      ? details.failedStep
      : typeof details?.step === 'string'
        ? details.step
        : cut.step();
  const detail: Record<string, unknown> = {
    epoch: cut.epoch,
    oldMaster: cut.oldMaster,
    candidate: cut.candidate,
    step,
    reason: errorMessage(err).slice(0, 2000),
    outcome,
    rolledBackTo: outcome === 'rolled-back' || outcome === 'restored' ? cut.oldMaster : null,
    ...(typeof details?.rollbackError === 'string' ? { rollbackError: details.rollbackError } : {}),
  };
  try {
    // Every failure is written: it says what this switchover left behind.
    await recordIncident(zkStore(zk, paths), cut.group, {
      alert: SWITCHOVER_FAILED_ALERT,
      kind: SWITCHOVER_FAILED_ALERT,
      detail,
      same: () => false,
    });
    return null;
  } catch (e) {
    return `could not write alert ${path}: ${errorMessage(e)}`;
  }
}

export interface SwitchoverRun {
  /** Whether lock/<group> (taken by the caller) is still held. */
  readonly held: () => boolean;
  /** Called once writes are cut: from then on a failure must leave the switchover-failed alert. */
  readonly onCut: (c: CutWrites) => void;
  /** Written to task/<group>.worker (the CLI: cli:<host>:<pid>). */
  readonly workerId: string;
  /** One line for the operator (the CLI writes it to stderr). */
  readonly say: (line: string) => void;
}

/**
 * The switchover under lock/<group> (taken by the caller): checks, pre-catch-up, then the write
 * pause (fence, catch up, promote, commit) and the re-pointing after it; rolls back a failure
 * after writes were cut. Throws a ZkmhaError whose details say the step and the outcome.
 */
export async function runSwitchover(
  ctx: ProcedureEnv,
  input: SwitchoverInput,
  ops: OpsContext,
  run: SwitchoverRun,
): Promise<SwitchoverResult> {
  const { held, onCut } = run;
  const { zk, paths, cfg } = ctx;
  const group = input.group;
  const { flavor, conns } = ops;
  const S = 'check zookeeper';
  // Under the lock: the state a worker would see.
  const view = await existingGroup(ctx, group, { master: true, route: true });
  const meta = view.meta!;
  const masterRec = view.master!;
  const routeRec = view.route!;
  const oldMaster = masterRec.record.node;
  if (view.task !== null)
    throw refuse(
      S,
      `an operation on '${group}' is open (${paths.task(group)}, kind ${view.task.record.kind}, step ${view.task.record.step})`,
    );
  if (routeRec.record.write === null)
    throw refuse(S, `writes to '${group}' are cut (route write: null); a failover may be in progress`);
  if (routeRec.record.write !== oldMaster)
    throw refuse(
      S,
      `route writes to ${routeRec.record.write}, master record names ${oldMaster}; run setmaster first`,
    );
  if (routeRec.record.epoch !== masterRec.record.epoch)
    throw refuse(
      S,
      `master/ (epoch ${masterRec.record.epoch}) and haproxy/ (epoch ${routeRec.record.epoch}) disagree`,
    );

  // ---- choose and pre-check the candidate; nothing changed yet ----
  const replicas = meta.members.filter((m) => m !== oldMaster);
  const gathered = await step('read positions', () =>
    readGtidPositions(conns, flavor, meta.members, cfg.mysql.connectTimeoutMs + 2000),
  );
  const mState = gathered.states.get(oldMaster);
  if (mState === undefined) {
    const p = gathered.positions.get(oldMaster);
    throw refuse(
      'check master',
      `${oldMaster} is unreachable: ${p !== undefined && !p.reachable ? p.error : 'unknown'}`,
    );
  }
  if (mState.readOnly) throw refuse('check master', `${oldMaster} is read-only; not a working master`);
  const pick = pickSwitchoverCandidate(view, gathered.positions, input.to);
  if (pick.kind === 'refuse') throw refuse('choose candidate', pick.reason);
  const candidate = pick.node;
  const cState = gathered.states.get(candidate)!;
  const cFrom = cState.replica === null ? null : `${cState.replica.masterHost}:${cState.replica.masterPort}`;
  if (
    cFrom !== oldMaster ||
    cState.replica === null ||
    !cState.replica.ioRunning ||
    !cState.replica.sqlRunning
  ) {
    throw refuse(
      'choose candidate',
      `${candidate} does not replicate from ${oldMaster} with both threads running`,
    );
  }
  // Let it catch up while writes still flow, so the pause only covers the last few transactions.
  const catchUp = input.catchUpTimeoutMs ?? 10000;
  if (catchUp > 0) {
    const before = await step(`read ${oldMaster}`, () => conns.run(oldMaster, (c) => flavor.readState(c)));
    const caughtUp = await step(`pre-check ${candidate}`, () =>
      conns.run(candidate, (c) => flavor.waitForGtid(c, before.gtidBinlogPos, catchUp)),
    );
    if (!caughtUp)
      throw refuse(
        'pre-check',
        `${candidate} did not apply ${oldMaster}'s position ${before.gtidBinlogPos} within ${catchUp} ms; nothing was changed`,
      );
  }
  if (!held()) throw refuse(`lock ${group}`, 'lost the lock');

  // ---- act ----
  const epoch = masterRec.record.epoch + 1;
  const startedAt = Date.now();
  const timer = new StepTimer();
  const task: TaskRecord = {
    v: 1,
    id: `switchover-${startedAt}`,
    kind: 'switchover',
    step: 'fence',
    oldMaster,
    candidate,
    startedAt,
    worker: run.workerId,
    epoch,
    detail: { maxPauseMs: input.maxPauseMs },
  };
  const taskPath = paths.task(group);
  await step('write task', () => zk.create(taskPath, encodeRecord(taskSchema, task, taskPath), 'persistent'));
  // The one task journal (core/op): every record is compare-and-set, and fails with LostLock once
  // the lock is gone or a worker took the task over. (Not runSteps: the catchup and promote records
  // are written WHILE their step runs, to keep them off the write pause.)
  const journal = new Journal(zkStore(zk, paths), group, { isHeld: held }, run.workerId, {
    record: task,
    version: 0,
  });
  /** Records a step (CAS; LostLock once the lock is gone or a worker took the task over). */
  const setTask = (stepName: SwitchoverStep, detail: Record<string, unknown> = {}): Promise<void> =>
    journal.save({ step: stepName, detail: { ...journal.task.detail, ...detail } });
  /** A step record written while the step runs; settles to the error, never rejects. */
  const recordWhile = (stepName: SwitchoverStep, detail: Record<string, unknown> = {}): Promise<unknown> =>
    setTask(stepName, detail).then(
      () => null,
      (err: unknown) => err ?? new Error('unknown error'),
    );
  const pause = input.pauseBeforeStep;
  const pauseBefore = async (s: SwitchoverStep): Promise<void> => {
    if (pause?.step !== s) return;
    run.say(`fault injection: pausing ${pause.ms} ms before step '${s}'`);
    await delay(pause.ms);
  };
  /**
   * The lock is gone (or a worker rewrote the task): whatever this process did next could race the
   * worker that now resolves the task, so it stops here — no rollback either.
   */
  const stopHere = (why: string): ZkmhaError =>
    new ZkmhaError(
      'OPERATION_FAILED',
      `${why} at step '${journal.task.step}': stopped; ${taskPath} is left to the server workers, which resolve an abandoned switchover (roll back before the promotion, forward after)`,
      { step: journal.task.step, outcome: 'left-to-workers' satisfies SwitchoverOutcome },
    );
  const takenOver = (err: unknown): boolean => err instanceof LostLock;

  await pauseBefore('fence');
  if (!held()) {
    // Nothing was cut yet: take the task back if it is still ours.
    await zk.delete(taskPath, journal.version).catch(() => undefined);
    throw refuse(`lock ${group}`, 'lost the lock');
  }

  // 1. Cut writes at every router and on the old master itself, both at once. From here on, a
  //    failure leaves the switchover-failed alert.
  onCut({ group, oldMaster, candidate, epoch, step: () => journal.task.step });
  const pauseStart = performance.now();
  const keepUsers = [cfg.mysql.user, cfg.mysql.replicationUser];
  const [routeCut, masterCut] = await Promise.allSettled([
    timer.run('fence route', () =>
      writeFencingRoute(zk, paths, group, { epoch, read: routeRec.record.read, version: routeRec.version }),
    ),
    timer.run('fence master', () => fenceMaster(ops, oldMaster, keepUsers, 2000)),
  ]);
  if (routeCut.status === 'rejected') {
    // Nothing was cut for the routers (the route changed under us): undo the MySQL side and stop.
    const undo = await conns
      .run(oldMaster, (c) => flavor.setReadOnly(c, false))
      .then(
        () => ({ text: `${oldMaster} is writable again`, outcome: 'restored' as const }),
        (err: unknown) => ({
          text: `ALSO FAILED to make ${oldMaster} writable again: ${errorMessage(err)}`,
          outcome: 'master-read-only' as const,
        }),
      );
    await zk.delete(taskPath, journal.version).catch(() => undefined);
    throw new ZkmhaError('OPERATION_FAILED', `fence route: ${errorMessage(routeCut.reason)}; ${undo.text}`, {
      step: 'fence',
      outcome: undo.outcome satisfies SwitchoverOutcome,
    });
  }
  const routeVersion = routeCut.value.version;
  let repointStarted = false;
  const rollback = async (why: string, candidateTouched: boolean): Promise<never> => {
    if (!held()) throw stopHere(`${why}; lost lock/${group}`);
    const failedStep = journal.task.step;
    try {
      await setTask('rollback', { why: why.slice(0, 2000) });
    } catch (err) {
      if (takenOver(err)) throw stopHere(`${why}; ${taskPath} was taken over`);
      // ZooKeeper trouble: the rollback's own commit tells whether it can be recorded.
    }
    await pauseBefore('rollback');
    const outcome = await rollBack(ctx, ops, {
      group,
      oldMaster,
      candidate,
      others: replicas.filter((n) => n !== candidate),
      epoch,
      masterVersion: masterRec.version,
      routeVersion,
      read: routeRec.record.read,
      ...promoteSemiSync(meta.settings),
      candidateTouched,
      repointed: repointStarted,
      taskVersion: journal.version,
      why,
      timer,
      startedAt,
      held,
    });
    throw new ZkmhaError('OPERATION_FAILED', `${why}; ${outcome.text}`, {
      step: journal.task.step,
      failedStep,
      outcome: outcome.outcome satisfies SwitchoverOutcome,
      ...(outcome.rollbackError !== undefined ? { rollbackError: outcome.rollbackError } : {}),
    });
  };
  if (masterCut.status === 'rejected')
    return rollback(`fence master: ${errorMessage(masterCut.reason)}`, false);
  const target = masterCut.value.gtidBinlogPos;

  // 2. The candidate executes everything the old master wrote, within what is left of the budget.
  //    The step and the target (what a worker finishing this switchover must find on the new
  //    master) are recorded meanwhile.
  const catchupRecorded = recordWhile('catchup', { target });
  if (pause?.step === 'catchup') {
    const err = await catchupRecorded;
    if (err !== null) return rollback(`record step catchup: ${errorMessage(err)}`, false);
    await pauseBefore('catchup');
  }
  const left = Math.max(1, Math.round(input.maxPauseMs - (performance.now() - pauseStart)));
  let applied: boolean;
  try {
    applied = await timer.run(
      'catch up',
      () => conns.run(candidate, (c) => flavor.waitForGtid(c, target, left)),
      (ok) => ok,
    );
  } catch (err) {
    await catchupRecorded;
    return rollback(`catch up: ${errorMessage(err)}`, false);
  }
  const catchupErr = await catchupRecorded;
  if (catchupErr !== null) {
    if (takenOver(catchupErr)) throw stopHere(`${taskPath} was taken over`);
    return rollback(`record step catchup: ${errorMessage(catchupErr)}`, false);
  }
  if (!applied)
    return rollback(
      `catch up: ${candidate} did not execute ${oldMaster}'s ${target} within ${left} ms (--max-pause-ms ${input.maxPauseMs})`,
      false,
    );

  // 3. Promote; meanwhile the others and the old master already attach to the candidate (it holds
  //    everything, and semi-sync replicas must be connected before its first commit), and the
  //    step is recorded. Then the new master and route in one multi.
  const promoteRecorded = recordWhile('promote');
  if (pause?.step === 'promote') {
    const err = await promoteRecorded;
    if (err !== null && takenOver(err)) throw stopHere(`${taskPath} was taken over`);
    await pauseBefore('promote');
  }
  if (!held()) {
    await promoteRecorded;
    throw stopHere(`lost lock/${group}`);
  }
  const others = replicas.filter((n) => n !== candidate);
  repointStarted = true;
  const repointing = repointAll(ctx, ops, {
    oldMaster,
    candidate,
    others,
    semiSync: meta.settings.semiSync !== 'off',
    parallelApply: meta.settings.parallelApply,
  });
  try {
    await timer.run('promote', () =>
      conns.run(candidate, (c) =>
        flavor.promote(c, {
          ...promoteSemiSync(meta.settings),
          keepReplicaConfig: true,
          parallelApply: meta.settings.parallelApply,
        }),
      ),
    );
  } catch (err) {
    await repointing.catch(() => undefined);
    const recErr = await promoteRecorded;
    if (recErr !== null && takenOver(recErr)) throw stopHere(`${taskPath} was taken over`);
    return rollback(`promote ${candidate}: ${errorMessage(err)}`, true);
  }
  const promoteErr = await promoteRecorded;
  if (promoteErr !== null && takenOver(promoteErr)) throw stopHere(`${taskPath} was taken over`);
  // (Any other failure to record leaves the journal version stale: the commit below fails on it and the
  // task says 'catchup' — a worker then sees the writable candidate and rolls forward.)
  await pauseBefore('commit');
  if (!held()) throw stopHere(`lost lock/${group}`);
  // Nodes out of the read pool stay out; the old master joins once it replicates.
  const read = routeRec.record.read.filter((n) => n !== candidate && n !== oldMaster);
  const commitStart = Date.now();
  try {
    await timer.run('commit', () =>
      commitMasterChange(zk, paths, {
        group,
        newMaster: candidate,
        epoch,
        reason: 'switchover',
        masterVersion: masterRec.version,
        route: { read, version: routeVersion },
        history: {
          kind: 'switchover',
          from: oldMaster,
          to: candidate,
          startedAt,
          endedAt: commitStart,
          steps: timer.steps.map((s) => ({ ...s })),
          detail: { gtid: target, reason: pick.reason },
        },
        taskVersion: journal.version,
      }),
    );
  } catch (err) {
    // MySQL already has the new master; ZooKeeper does not. The task record says so.
    await repointing.catch(() => undefined);
    await setTask('commit', { failed: errorMessage(err).slice(0, 2000) }).catch(() => undefined);
    throw new ZkmhaError(
      'OPERATION_FAILED',
      `commit: ${errorMessage(err)} — ${candidate} is promoted in MySQL but not recorded; left ${taskPath} (a server worker finishes it; or 'mha setmaster ${group} ${candidate} --reroute')`,
      { step: 'commit', outcome: 'commit-failed' satisfies SwitchoverOutcome },
    );
  }
  const pauseMs = Math.round((performance.now() - pauseStart) * 10) / 10;

  // 4. Off the write pause: forget the candidate's old replication configuration; the old master
  //    and the others replicate from the new master; the old master joins the read pool.
  await timer
    .run('forget replication', () => conns.run(candidate, (c) => flavor.forgetReplication(c)))
    .catch(() => undefined);
  const repointed = await timer.run('re-point', () => repointing);
  if (repointed[oldMaster]?.ok === true) {
    await step('return old master to the read pool', async () => {
      const nd = await zk.get(paths.haproxy(group));
      const cur = decodeRecord(haproxySchema, nd.data, paths.haproxy(group));
      if (cur.epoch !== epoch || cur.write !== candidate || cur.read.includes(oldMaster)) return;
      await zk.set(
        paths.haproxy(group),
        encodeRecord(haproxySchema, { ...cur, read: [...cur.read, oldMaster] }, paths.haproxy(group)),
        nd.stat.version,
      );
    }).catch(() => undefined);
  }
  return {
    group,
    from: oldMaster,
    to: candidate,
    epoch,
    pauseMs,
    reason: pick.reason,
    steps: timer.steps,
    repointed,
  };
}
