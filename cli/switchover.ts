import { promoteSemiSync } from '../core/semisync';
import { chooseCandidate, type NodePosition } from '../core/candidate';
import { ZkmhaError, errorMessage, isZkmhaError } from '../core/errors';
import type { Flavor, ServerState } from '../core/mysql/flavor';
import { delay, withTimeout } from '../core/timeout';
import { parseNode } from '../core/names';
import {
  NodeConnections,
  SWITCHOVER_STEPS,
  StepTimer,
  alertOps,
  commitMasterChange,
  readGtidPositions,
  repointReplicas,
  rollBackSwitchover,
  writeFencingRoute,
  type OpsContext,
  type StepTiming,
  type SwitchoverStep,
} from '../core/ops';
import { decodeRecord, encodeRecord, haproxySchema, taskSchema, type TaskRecord } from '../core/records';
import type { GroupView } from '../core/view';
import { acquireLock } from '../core/zk/lock';
import { cliWorker } from './worker';
import type { CliContext } from './context';
import { existingGroup } from './lookup';
import { flavorFor } from '../core/mysql/index';
import { refuse, step } from './output';
import { waitReplicating } from './replication';

/**
 * `mha switchover <group> [--to node] [--max-pause-ms N]`: a planned master change that loses no
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
 * SIGINT, SIGTERM and SIGHUP (a dropped terminal) are ignored while it runs: every step is bounded,
 * so it finishes or rolls back. A failure after writes were cut always leaves the alert
 * `watch_down/<group>__switchover-failed` (step, reason, and what it rolled back to, if anything).
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

/**
 * Parses MHA_FAULT_SWITCHOVER_PAUSE_BEFORE_STEP ("promote:5000"): pause before that step, after
 * recording it in task/<group> ('commit': after the promotion, before the commit multi).
 */
export function switchoverFaultFromEnv(
  value: string | undefined,
): { step: SwitchoverStep; ms: number } | undefined {
  if (value === undefined || value === '') return undefined;
  const m = /^([a-z]+):(\d{1,7})$/.exec(value);
  if (m === null || !SWITCHOVER_STEPS.includes(m[1] as SwitchoverStep))
    throw new ZkmhaError(
      'BAD_CONFIG',
      `MHA_FAULT_SWITCHOVER_PAUSE_BEFORE_STEP must be <step>:<ms> with step one of ${SWITCHOVER_STEPS.join(', ')}`,
    );
  return { step: m[1] as SwitchoverStep, ms: Number(m[2]) };
}

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

export type CandidatePick =
  | { readonly kind: 'ok'; readonly node: string; readonly reason: string }
  | { readonly kind: 'refuse'; readonly reason: string };

/** Pure: the replica to switch over to (the given one, checked, or the failover choice). */
export function pickSwitchoverCandidate(
  view: GroupView,
  positions: ReadonlyMap<string, NodePosition>,
  to: string | undefined,
): CandidatePick {
  const master = view.master?.record.node ?? null;
  const choice = chooseCandidate(view, positions, { oldMaster: master });
  if (to === undefined) {
    return choice.kind === 'chosen'
      ? { kind: 'ok', node: choice.node, reason: choice.reason }
      : { kind: 'refuse', reason: `no candidate: ${choice.detail}` };
  }
  if (to === master) return { kind: 'refuse', reason: `${to} is already the master` };
  if (!view.members.some((m) => m.node === to))
    return { kind: 'refuse', reason: `${to} is not a member of '${view.group}'` };
  const a = choice.assessments.find((x) => x.node === to);
  if (a === undefined || !a.eligible)
    return { kind: 'refuse', reason: `${to} cannot be promoted: ${a?.why ?? 'not assessed'}` };
  const p = positions.get(to);
  if (p !== undefined && p.reachable && (p.replica === null || !p.replica.ioRunning))
    return {
      kind: 'refuse',
      reason: `${to} is not receiving from ${master ?? 'the master'} (IO thread stopped)`,
    };
  return { kind: 'ok', node: to, reason: 'given with --to' };
}

export async function switchover(ctx: CliContext, input: SwitchoverInput): Promise<SwitchoverResult> {
  const { zk, paths, cfg } = ctx;
  const group = input.group;
  const pre = await existingGroup(ctx, group, { master: true, route: true });
  if (input.to !== undefined && !pre.meta!.members.includes(input.to))
    throw refuse('check zookeeper', `${input.to} is not a member of '${group}'`);
  const flavor: Flavor = flavorFor(pre.meta!.flavor);
  const owner = cliWorker();
  const lock = await step(`lock ${group}`, () => acquireLock(zk, paths, group, { timeoutMs: 5000, owner }));
  const conns = NodeConnections.fromConfig(cfg.mysql);
  const ops: OpsContext = { flavor, conns };
  // Interrupted half-way, writes would stay cut: every step is bounded, so finish or roll back.
  // A hang-up means the terminal is gone: say nothing (a write to it could fail), carry on.
  const onSignal = (sig: NodeJS.Signals): void => {
    if (sig === 'SIGHUP') return;
    process.stderr.write(
      `mha switchover: ${sig} ignored: the switchover finishes or rolls back (bounded by --max-pause-ms)\n`,
    );
  };
  const onStderrError = (): void => undefined; // a terminal that went away must not end the switchover
  for (const sig of SIGNALS) process.on(sig, onSignal);
  process.stderr.on('error', onStderrError);
  let cut: CutWrites | null = null;
  try {
    return await switchoverLocked(
      ctx,
      input,
      ops,
      () => lock.isHeld(),
      (c) => {
        cut = c;
      },
    );
  } catch (err) {
    if (cut !== null) await raiseSwitchoverFailed(ctx, cut, err);
    throw err;
  } finally {
    for (const sig of SIGNALS) process.off(sig, onSignal);
    process.stderr.off('error', onStderrError);
    await lock.release().catch(() => undefined);
    await conns.closeAll();
  }
}

/** Signals ignored while a switchover runs. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Alert kind written whenever a switchover fails after it cut writes. */
export const SWITCHOVER_FAILED_ALERT = 'switchover-failed';

/** What the failure handler needs once writes were cut (the step is read when it fails). */
interface CutWrites {
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
 * trouble may be why the switchover failed; the error message says the same on stderr.
 */
async function raiseSwitchoverFailed(ctx: CliContext, cut: CutWrites, err: unknown): Promise<void> {
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
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const cur = await zk.getOrNull(path);
      await zk.multi(
        alertOps(
          paths,
          cut.group,
          SWITCHOVER_FAILED_ALERT,
          { kind: SWITCHOVER_FAILED_ALERT, at: Date.now(), detail },
          cur?.stat.version ?? null,
        ),
      );
      return;
    } catch (e) {
      if (!(isZkmhaError(e, 'ZK_NODE_EXISTS') || isZkmhaError(e, 'ZK_BAD_VERSION'))) {
        process.stderr.write(`mha switchover: could not write alert ${path}: ${errorMessage(e)}\n`);
        return;
      }
    }
  }
}

async function switchoverLocked(
  ctx: CliContext,
  input: SwitchoverInput,
  ops: OpsContext,
  held: () => boolean,
  onCut: (c: CutWrites) => void,
): Promise<SwitchoverResult> {
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
  let task: TaskRecord = {
    v: 1,
    id: `switchover-${startedAt}`,
    kind: 'switchover',
    step: 'fence',
    oldMaster,
    candidate,
    startedAt,
    worker: cliWorker(),
    epoch,
    detail: { maxPauseMs: input.maxPauseMs },
  };
  const taskPath = paths.task(group);
  await step('write task', () => zk.create(taskPath, encodeRecord(taskSchema, task, taskPath), 'persistent'));
  let taskVersion = 0;
  /** Records a step (CAS: fails with ZK_BAD_VERSION / ZK_NO_NODE once a worker took the task over). */
  const setTask = async (stepName: SwitchoverStep, detail: Record<string, unknown> = {}): Promise<void> => {
    const next: TaskRecord = { ...task, step: stepName, detail: { ...task.detail, ...detail } };
    taskVersion = (await zk.set(taskPath, encodeRecord(taskSchema, next, taskPath), taskVersion)).version;
    task = next;
  };
  /** A step record written while the step runs; settles to the error, never rejects. */
  const recordWhile = (stepName: SwitchoverStep, detail: Record<string, unknown> = {}): Promise<unknown> =>
    setTask(stepName, detail).then(
      () => null,
      (err: unknown) => err ?? new Error('unknown error'),
    );
  const pause = input.pauseBeforeStep;
  const pauseBefore = async (s: SwitchoverStep): Promise<void> => {
    if (pause?.step !== s) return;
    process.stderr.write(`mha switchover: fault injection: pausing ${pause.ms} ms before step '${s}'\n`);
    await delay(pause.ms);
  };
  /**
   * The lock is gone (or a worker rewrote the task): whatever this process did next could race the
   * worker that now resolves the task, so it stops here — no rollback either.
   */
  const stopHere = (why: string): ZkmhaError =>
    new ZkmhaError(
      'OPERATION_FAILED',
      `${why} at step '${task.step}': stopped; ${taskPath} is left to the server workers, which resolve an abandoned switchover (roll back before the promotion, forward after)`,
      { step: task.step, outcome: 'left-to-workers' satisfies SwitchoverOutcome },
    );
  const takenOver = (err: unknown): boolean =>
    isZkmhaError(err, 'ZK_BAD_VERSION') || isZkmhaError(err, 'ZK_NO_NODE');

  await pauseBefore('fence');
  if (!held()) {
    // Nothing was cut yet: take the task back if it is still ours.
    await zk.delete(taskPath, taskVersion).catch(() => undefined);
    throw refuse(`lock ${group}`, 'lost the lock');
  }

  // 1. Cut writes at every router and on the old master itself, both at once. From here on, a
  //    failure leaves the switchover-failed alert.
  onCut({ group, oldMaster, candidate, epoch, step: () => task.step });
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
    await zk.delete(taskPath, taskVersion).catch(() => undefined);
    throw new ZkmhaError('OPERATION_FAILED', `fence route: ${errorMessage(routeCut.reason)}; ${undo.text}`, {
      step: 'fence',
      outcome: undo.outcome satisfies SwitchoverOutcome,
    });
  }
  const routeVersion = routeCut.value.version;
  let repointStarted = false;
  const rollback = async (why: string, candidateTouched: boolean): Promise<never> => {
    if (!held()) throw stopHere(`${why}; lost lock/${group}`);
    const failedStep = task.step;
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
      taskVersion,
      why,
      timer,
      startedAt,
      held,
    });
    throw new ZkmhaError('OPERATION_FAILED', `${why}; ${outcome.text}`, {
      step: task.step,
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
  });
  try {
    await timer.run('promote', () =>
      conns.run(candidate, (c) =>
        flavor.promote(c, { ...promoteSemiSync(meta.settings), keepReplicaConfig: true }),
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
  // (Any other failure to record leaves taskVersion stale: the commit below fails on it and the
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
        taskVersion,
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

/**
 * read_only=ON, client connections killed (all but `keepUsers`), then the final position — the
 * flavor's fencing steps on the cached connection (no new handshake inside the write pause).
 */
async function fenceMaster(
  ops: OpsContext,
  node: string,
  keepUsers: readonly string[],
  timeoutMs: number,
): Promise<ServerState> {
  return withTimeout(
    ops.conns.run(node, async (c) => {
      await ops.flavor.setReadOnly(c, true);
      await ops.flavor.killClientConnections(c, { keepUsers });
      return ops.flavor.readState(c);
    }),
    timeoutMs,
    `fence ${node}`,
    'MYSQL_TIMEOUT',
  );
}

async function repointAll(
  ctx: CliContext,
  ops: OpsContext,
  a: { oldMaster: string; candidate: string; others: readonly string[]; semiSync: boolean },
): Promise<Record<string, { ok: true } | { ok: false; error: string }>> {
  const { cfg } = ctx;
  const replication = { user: cfg.mysql.replicationUser, password: cfg.mysql.replicationPassword };
  const { host, port } = parseNode(a.candidate);
  const [others, old] = await Promise.all([
    repointReplicas(ops, a.others, a.candidate, { replication, semiSync: a.semiSync, timeoutMs: 5000 }),
    (async (): Promise<{ ok: true } | { ok: false; error: string }> => {
      try {
        // A former master: its own binlog is its position (gtid_slave_pos is stale), hence current_pos.
        await ops.conns.run(a.oldMaster, (c) =>
          ops.flavor.replicateFrom(c, {
            host,
            port,
            ...replication,
            semiSync: a.semiSync,
            gtidMode: 'current_pos',
          }),
        );
        await ops.conns.run(a.oldMaster, (c) =>
          waitReplicating(ops.flavor, c, a.oldMaster, a.candidate, 5000),
        );
        return { ok: true };
      } catch (err) {
        return { ok: false, error: errorMessage(err) };
      }
    })(),
  ]);
  return { ...Object.fromEntries(others), [a.oldMaster]: old };
}

interface RollbackArgs {
  readonly group: string;
  readonly oldMaster: string;
  readonly candidate: string;
  readonly epoch: number;
  readonly masterVersion: number;
  readonly routeVersion: number;
  readonly read: readonly string[];
  readonly semiSync: boolean;
  readonly candidateTouched: boolean;
  /** The others and the old master were being re-pointed to the candidate. */
  readonly repointed: boolean;
  readonly others: readonly string[];
  readonly taskVersion: number;
  readonly why: string;
  readonly timer: StepTimer;
  readonly startedAt: number;
  readonly held: () => boolean;
}

/**
 * Undo a switchover that has cut writes (core/ops rollBackSwitchover: the candidate and the others
 * replicate from the old master again, the old master is writable once every other node is
 * read-only, and master/ + haproxy/ name it at the new epoch in one multi with the history event
 * and the task deleted). Returns a sentence for the error message and the outcome; a failed
 * rollback leaves the task record (the caller writes the `switchover-failed` alert either way).
 */
async function rollBack(
  ctx: CliContext,
  ops: OpsContext,
  a: RollbackArgs,
): Promise<{
  text: string;
  outcome: 'rolled-back' | 'rollback-failed';
  rollbackError?: string;
}> {
  const { zk, paths, cfg } = ctx;
  try {
    const { notBack } = await rollBackSwitchover(
      zk,
      paths,
      ops,
      {
        group: a.group,
        oldMaster: a.oldMaster,
        candidate: a.candidate,
        others: a.others,
        epoch: a.epoch,
        masterVersion: a.masterVersion,
        routeVersion: a.routeVersion,
        read: a.read,
        semiSync: a.semiSync,
        replication: { user: cfg.mysql.replicationUser, password: cfg.mysql.replicationPassword },
        candidateTouched: a.candidateTouched,
        repointed: a.repointed,
        taskVersion: a.taskVersion,
        startedAt: a.startedAt,
        reason: 'switchover rolled back',
        history: { kind: 'switchover', detail: { rolledBack: true, candidate: a.candidate, why: a.why } },
        held: a.held,
      },
      a.timer,
    );
    return {
      text: `rolled back: ${a.oldMaster} is writable again and routed (epoch ${a.epoch})${notBack.length > 0 ? `; not re-pointed back: ${notBack.join(', ')} (fix with mha setha)` : ''}`,
      outcome: 'rolled-back',
    };
  } catch (err) {
    const msg = errorMessage(err);
    return {
      text: `ROLLBACK FAILED (${msg}); writes stay cut; left ${paths.task(a.group)} (a server worker retries the rollback) and alert ${paths.watchDown(a.group, SWITCHOVER_FAILED_ALERT)}`,
      outcome: 'rollback-failed',
      rollbackError: msg.slice(0, 2000),
    };
  }
}
