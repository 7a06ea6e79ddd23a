import { chooseCandidate } from '../../core/candidate';
import {
  candidateSafety,
  describeSafety,
  mustAnswer,
  type CandidateSafety,
  type OldMasterBinlog,
} from '../../core/candidate-safety';
import type { Config } from '../../core/config';
import { ZkmhaError, errorMessage, isZkmhaError } from '../../core/errors';
import type { Logger } from '../../core/log';
import { classifyMysqlError } from '../../core/mysql/connection';
import type { Flavor } from '../../core/mysql/flavor';
import { LostLock, msSince, type Journal } from '../../core/op/journal';
import type { StepList, StepResult } from '../../core/op/runner';
import type { OpStore } from '../../core/op/store';
import { commitMasterChange, writeFencingRoute } from '../../core/ops/commit';
import type { NodeConnections } from '../../core/ops/connections';
import { askPositions, readGtidPositions } from '../../core/ops/positions';
import { serialized, type DrainProgress } from '../../core/ops/drain';
import {
  catchUpFrom,
  drainReplica,
  fenceOldMaster,
  promoteCandidate,
  repointReplicas,
  type OpsContext,
  type ReplicationCredentials,
  type RepointResult,
} from '../../core/ops/promote';
import {
  acceptLossSchema,
  decodeRecord,
  type AcceptLossRecord,
  type HistoryRecord,
} from '../../core/records';
import { promoteSemiSync } from '../../core/semisync';
import { appendFromOldMaster, describeAppend } from './append';
import { oldMasterGate } from './old-master-gate';
import { delay, withTimeout } from '../../core/timeout';
import { member, type GroupView } from '../../core/view';
import {
  CandidateLost,
  CandidateNotCommittable,
  FAILOVER_STEPS,
  FailoverBlocked,
  NoCandidate,
  candidateAnswerMs,
  candidateError,
  chooseExcluding,
  commitGate,
  everExcluded,
  failoverCommit,
  fencingRead,
  parseDetail,
  repointTargets,
  unanswering,
  type CandidateCheck,
  type FailoverDetail,
  type FailoverStep,
} from './plan';

/**
 * The failover's steps (design §5.2–§5.8), run by core/op/runner.ts: before a step runs its name
 * is in task/<group>.step; a worker that takes the task over runs that step again, so each one
 * checks what is already done.
 *
 *   fence    route `write: null` with epoch+1 (CAS); if the old master may answer: read_only=ON
 *            and kill its client connections
 *   choose   read every replica's received/applied GTIDs in parallel; chooseCandidate()
 *   drain    stop the candidate's IO thread, wait (bounded) until it applied what it received
 *            — the seam for "append from the old master's binlogs via its agent" is here
 *            (see `appendFromOldMaster`), not implemented yet: no agent endpoint exists
 *   catchup  only when a more advanced replica may not be promoted (priority 0): the candidate
 *            replicates from it until it has everything
 *   promote  stop/reset replication, semi-sync master side per settings, read_only=OFF
 *   repoint  every other replica → the new master with GTID auto-position
 *   commit   the candidate is asked once more (commitGate: reachable and writable — repoint
 *            swallows per-node errors, so nothing else would notice a candidate that died after
 *            its promotion); then one multi: master/ (epoch+1), haproxy/, history/, rejoin/<old>,
 *            delete task/, plus the `watch_down/<group>__failover` alert that anti-flap looks for
 */
export interface FailoverContext {
  readonly store: OpStore;
  readonly journal: Journal;
  readonly cfg: Config;
  readonly log: Logger;
  readonly mysql: OpsContext;
  readonly conns: NodeConnections;
  readonly flavor: Flavor;
  readonly workerId: string;
  readonly group: string;
  readonly epoch: number;
  readonly oldMaster: string;
  /** Taken over from another worker (or an earlier attempt), not just created. */
  readonly resumed: boolean;
  /** The snapshot the MySQL-only steps reuse; fence and commit read a fresh one. */
  lastView: GroupView | null;
  /** Started by 'promote' (the re-pointing runs while the candidate is promoted), awaited by 'repoint'. */
  repointing: Promise<Map<string, RepointResult>> | null;
  /** Set by 'commit': the step records of the history event. */
  committed: { readonly newMaster: string; readonly steps: HistoryRecord['steps'] } | null;
}

type Result = StepResult<FailoverStep>;
type ViewWithMaster = GroupView & {
  readonly meta: NonNullable<GroupView['meta']>;
  readonly master: NonNullable<GroupView['master']>;
};

const detailOf = (ctx: FailoverContext): FailoverDetail => parseDetail(ctx.journal.task);
const candidateOf = (ctx: FailoverContext): string => ctx.journal.task.candidate!;
const replicationOf = (cfg: Config): ReplicationCredentials => ({
  user: cfg.mysql.replicationUser,
  password: cfg.mysql.replicationPassword,
});

/**
 * The snapshot a step decides from. Steps that write ZooKeeper read a fresh one (and stop when
 * the task is gone or replaced); the MySQL-only steps reuse the last (the task's compare-and-set
 * still catches any concurrent change).
 */
async function viewOf(ctx: FailoverContext, fresh: boolean): Promise<ViewWithMaster> {
  if (ctx.lastView === null || fresh) {
    ctx.lastView = await ctx.store.readView(ctx.group);
    const t = ctx.lastView.task;
    if (t === null || t.record.id !== ctx.journal.task.id)
      throw new LostLock(`task/${ctx.group} is gone or replaced`);
  }
  const view = ctx.lastView;
  if (view.meta === null || view.master === null)
    throw new ZkmhaError('CONFLICT', `meta_group/ or master/ of ${ctx.group} vanished`);
  return view as ViewWithMaster;
}

/**
 * Runs an operation on the candidate's own connection; its refusal or silence past the deadline
 * becomes CandidateLost (plan.ts candidateError). A connection left with a statement in flight on
 * a silent node is dropped: it would only queue the next one behind it.
 */
function onCandidate<T>(ctx: FailoverContext, candidate: string, op: Promise<T>): Promise<T> {
  return op.catch((err: unknown) => {
    const e = candidateError(candidate, err);
    if (e instanceof CandidateLost && e.reason === 'timed-out') ctx.conns.drop(candidate);
    throw e;
  });
}

/** The deadline of one round trip with the candidate (plan.ts candidateAnswerMs). */
const answerMsOf = (ctx: FailoverContext): number => candidateAnswerMs(ctx.cfg.mysql.connectTimeoutMs);

/** The old master made read-only with its client connections killed, if it answers (bounded). */
async function fenceOldMasterMysql(ctx: FailoverContext): Promise<void> {
  const f = await fenceOldMaster(ctx.mysql, ctx.oldMaster, {
    timeoutMs: Math.min(ctx.cfg.mysql.connectTimeoutMs, 1000),
    keepUsers: [ctx.cfg.mysql.user, ctx.cfg.mysql.replicationUser],
  });
  ctx.log.info(
    { fence: f.kind, ...(f.kind === 'fenced' ? { killed: f.killed } : { error: f.error }) },
    'old master fencing',
  );
}

function startRepoint(
  ctx: FailoverContext,
  view: GroupView,
  candidate: string,
  semiSync: boolean,
): Promise<Map<string, RepointResult>> {
  const skip = new Set(unanswering(detailOf(ctx)));
  const targets = repointTargets(view, candidate, ctx.oldMaster).filter((n) => !skip.has(n));
  return repointReplicas(ctx.mysql, targets, candidate, {
    replication: replicationOf(ctx.cfg),
    semiSync,
    timeoutMs: 5000,
    parallelApply: view.meta!.settings.parallelApply,
  });
}

async function fence(ctx: FailoverContext): Promise<Result> {
  const view = await viewOf(ctx, true);
  const { epoch, group, oldMaster } = ctx;
  const route = view.route;
  if (route === null || route.record.epoch !== epoch || route.record.write !== null) {
    if (route !== null && route.record.epoch > epoch)
      throw new ZkmhaError(
        'CONFLICT',
        `haproxy/${group} is at epoch ${route.record.epoch}, beyond this failover's ${epoch}`,
      );
    await writeFencingRoute(ctx.store, ctx.store.paths, group, {
      epoch,
      read: fencingRead(route, oldMaster),
      version: route?.version ?? null,
    });
  }
  // Just confirmed refused or silent: another attempt would only cost time. Otherwise (resumed,
  // or an agent said "down") make sure it takes no write if it answers.
  const how = detailOf(ctx).how;
  if (ctx.resumed || !(how === 'refused' || how === 'unreachable')) await fenceOldMasterMysql(ctx);
  return { next: 'choose' };
}

/**
 * accept_loss/<group> (`mha failover <group> --accept-loss`): the record when it names this
 * failover's epoch; a stale or invalid one is never acted on (the commit deletes any).
 */
async function acceptLossOf(ctx: FailoverContext): Promise<AcceptLossRecord | null> {
  const path = ctx.store.paths.acceptLoss(ctx.group);
  const nd = await ctx.store.getOrNull(path);
  if (nd === null) return null;
  try {
    const rec = decodeRecord(acceptLossSchema, nd.data, path);
    if (rec.epoch === ctx.epoch) return rec;
    ctx.log.warn({ requestEpoch: rec.epoch }, 'ignoring accept_loss/ given for another failover');
  } catch (err) {
    ctx.log.warn({ err: errorMessage(err) }, 'ignoring invalid accept_loss/');
  }
  return null;
}

/** What the old master's binlog can still give, before the append step. */
function oldMasterBinlog(view: GroupView, oldMaster: string): OldMasterBinlog {
  return member(view, oldMaster)?.agent?.mysqldDown === true ? 'reachable' : 'unreachable';
}

/**
 * Issue 10 §2: the choice asks every replica that may hold an acknowledged commit and waits up
 * to settings.replicaWaitMs for those that do not answer; core/candidate-safety.ts then says
 * whether promoting is provably safe, pending the append, allowed at a recorded risk, or blocked.
 */
async function choose(ctx: FailoverContext): Promise<Result> {
  const view = await viewOf(ctx, false);
  if (ctx.journal.task.candidate !== null) return { next: 'drain' };
  const detail = detailOf(ctx);
  const { oldMaster } = ctx;
  const { settings } = view.meta;
  const perAskMs = Math.max(1000, ctx.cfg.mysql.connectTimeoutMs * 2);
  const must = mustAnswer(view.members, oldMaster);
  // Old masters awaiting rejoin acknowledged nothing of this master: asked once, never waited for.
  const rest = view.members.map((m) => m.node).filter((n) => n !== oldMaster && !must.includes(n));
  const [asked, others] = await Promise.all([
    askPositions(ctx.conns, ctx.flavor, must, { perAskMs, waitMs: settings.replicaWaitMs }),
    readGtidPositions(ctx.conns, ctx.flavor, rest, perAskMs),
    detail.fenceMysql === true ? fenceOldMasterMysql(ctx) : Promise.resolve(),
  ]);
  const positions = new Map([...asked.positions, ...others.positions]);
  const safety = candidateSafety({
    policy: settings.semiSync,
    unanswered: asked.unanswered,
    oldMasterBinlog: oldMasterBinlog(view, oldMaster),
    acceptLoss: asked.unanswered.length > 0 ? await acceptLossOf(ctx) : null,
  });
  if (asked.unanswered.length > 0)
    ctx.log.warn(
      { unanswered: asked.unanswered, waitedMs: asked.ms, rule: safety.rule },
      describeSafety(safety),
    );
  if (safety.kind === 'blocked') throw new FailoverBlocked(safety);
  const { choice, reset } = chooseExcluding(
    (exclude) =>
      chooseCandidate(view, positions, {
        oldMaster,
        exclude,
        acceptedMasters: [oldMaster, ...everExcluded(detail), ...detail.formerSources],
      }),
    detail.excluded,
  );
  if (reset)
    ctx.log.warn(
      { excluded: detail.excluded, chosen: choice.kind === 'chosen' ? choice.node : null },
      'the excluded candidates left none: choosing again among all of them',
    );
  if (choice.kind === 'none') {
    // The next attempt starts without them: one that answers again may be the one to promote.
    if (reset) await ctx.journal.save({ detail: { ...ctx.journal.task.detail, excluded: [] } });
    throw new NoCandidate(`${choice.reason}: ${choice.detail}`);
  }
  ctx.log.info({ candidate: choice.node, reason: choice.reason, rule: safety.rule }, 'candidate chosen');
  return {
    next: 'drain',
    task: { candidate: choice.node },
    detail: {
      ...(reset ? { excluded: [] } : {}),
      fenceMysql: false,
      choiceReason: choice.reason,
      catchUpFrom: choice.catchUpFrom,
      safety,
    },
  };
}

async function drain(ctx: FailoverContext): Promise<Result> {
  const view = await viewOf(ctx, false);
  const { drainTimeoutMs, drainMaxMs } = view.meta.settings;
  const candidate = candidateOf(ctx);
  const source = detailOf(ctx).catchUpFrom ?? null;
  // Waits while apply progresses (core/ops/drain); task/ shows the progress. The drain loop awaits
  // each save, so none is in flight when the runner records the step.
  const onProgress = serialized((p: DrainProgress) =>
    ctx.journal.save({ detail: { ...ctx.journal.task.detail, drainProgress: p } }),
  );
  // Every round trip within the candidate's deadline: a silent candidate is given up, one that
  // answers and applies is waited for.
  const drainOpts = { timeoutMs: drainTimeoutMs, maxMs: drainMaxMs, onProgress, answerMs: answerMsOf(ctx) };
  // Meanwhile the other replicas stop receiving too (nothing more can come from the old master,
  // and their re-pointing later is quicker with the IO thread already stopped). Not the ones that
  // already failed to answer in this failover: the drain would wait for them.
  const skip = new Set(unanswering(detailOf(ctx)));
  const others = repointTargets(view, candidate, ctx.oldMaster).filter(
    (n) => n !== source?.node && !skip.has(n),
  );
  // Skipped ones may still receive from the old master (and acknowledge for it).
  const stillReceiving: string[] = repointTargets(view, candidate, ctx.oldMaster).filter((n) => skip.has(n));
  const [c, s] = await Promise.all([
    onCandidate(ctx, candidate, drainReplica(ctx.mysql, candidate, drainOpts)),
    source !== null ? drainReplica(ctx.mysql, source.node, drainOpts) : Promise.resolve(null),
    ...others.map((n) =>
      withTimeout(
        ctx.conns.run(n, (conn) => ctx.flavor.stopIoThread(conn)),
        2000,
        `stop IO thread on ${n}`,
      ).catch((err: unknown) => {
        stillReceiving.push(n);
        ctx.log.info({ node: n, err: errorMessage(err) }, 'could not stop IO thread (re-pointed later)');
      }),
    ),
  ]);
  if (!c.applied)
    throw new ZkmhaError(
      'TIMEOUT',
      `${candidate} did not apply what it received (${c.target}): ${c.why ?? 'timed out'}`,
    );
  if (s !== null && !s.applied)
    throw new ZkmhaError(
      'TIMEOUT',
      `catch-up source ${source!.node} did not apply what it received (${s.target}): ${s.why ?? 'timed out'}`,
    );
  return {
    next: source !== null && s !== null && s.target !== '' ? 'catchup' : 'append',
    detail: {
      drainTarget: c.target,
      ...(s !== null ? { sourceTarget: s.target } : {}),
      // Stopped by now (the drain's wait came after the stops): the old master's gate counts from here.
      ioStoppedAt: Date.now(),
      allIoStopped: stillReceiving.length === 0,
    },
  };
}

async function catchup(ctx: FailoverContext): Promise<Result> {
  const view = await viewOf(ctx, false);
  const { drainTimeoutMs } = view.meta.settings;
  const candidate = candidateOf(ctx);
  const detail = detailOf(ctx);
  const source = detail.catchUpFrom;
  const target = detail.sourceTarget;
  if (source !== null && source !== undefined && target !== undefined && target !== '') {
    const ok = await onCandidate(
      ctx,
      candidate,
      catchUpFrom(
        ctx.mysql,
        candidate,
        { node: source.node, target },
        { timeoutMs: drainTimeoutMs, replication: replicationOf(ctx.cfg), answerMs: answerMsOf(ctx) },
      ),
    );
    if (!ok)
      throw new ZkmhaError(
        'TIMEOUT',
        `${candidate} did not catch up from ${source.node} to ${target} within ${drainTimeoutMs} ms`,
      );
    ctx.log.info({ source: source.node, target }, 'candidate caught up from a more advanced replica');
  }
  return { next: 'append' };
}

/**
 * The old master's binlog may hold what no replica received (design §5.6): its agent appends it.
 * After the catch-up: that re-replicates from the source by gtid_slave_pos, which appended
 * transactions (applied outside replication) do not advance, so they would arrive twice.
 */
async function append(ctx: FailoverContext): Promise<Result> {
  const view = await viewOf(ctx, false);
  const appended = await appendFromOldMaster(ctx, view, candidateOf(ctx));
  ctx.log.info({ append: appended }, describeAppend(appended));
  const appendDetail = { appended: { ...appended, summary: describeAppend(appended) } };
  // The choice left it to the append (replicas unanswered, the old master's agent alive): decide now.
  let safety = detailOf(ctx).safety as CandidateSafety | undefined;
  if (safety?.kind === 'pending') {
    const done = appended.kind === 'answered' && appended.state === 'done';
    safety = candidateSafety({
      policy: view.meta.settings.semiSync,
      unanswered: safety.unanswered,
      oldMasterBinlog: done ? 'appended' : 'append-failed',
      acceptLoss: done ? null : await acceptLossOf(ctx),
    });
    ctx.log.warn({ rule: safety.rule }, describeSafety(safety));
    if (safety.kind === 'blocked') {
      await ctx.journal.save({ detail: { ...ctx.journal.task.detail, ...appendDetail } });
      throw new FailoverBlocked(safety);
    }
  }
  return { next: 'promote', detail: { ...appendDetail, ...(safety !== undefined ? { safety } : {}) } };
}

async function promote(ctx: FailoverContext): Promise<Result> {
  const view = await viewOf(ctx, false);
  const { semiSync, semiSyncTimeoutMs, failsafeRecheckMs } = view.meta.settings;
  const candidate = candidateOf(ctx);
  // The other replicas are re-pointed while the candidate is promoted: everything they lack is
  // already in its binlog (drained), and their semi-sync registration holds.
  ctx.repointing = startRepoint(ctx, view, candidate, semiSync !== 'off');
  const detail = detailOf(ctx);
  const gate = oldMasterGate({
    how: detail.how,
    agentConnected: member(view, ctx.oldMaster)?.agent != null,
    policy: semiSync,
    semiSyncTimeoutMs,
    failsafeRecheckMs,
    ioStoppedAt: detail.ioStoppedAt ?? null,
    allIoStopped: detail.allIoStopped === true,
    now: Date.now(),
  });
  const waitedMs = gate.kind === 'wait' ? gate.untilMs - Date.now() : 0;
  if (gate.kind === 'wait') {
    ctx.log.warn({ waitMs: waitedMs, why: gate.why }, 'waiting for the old master to fence itself');
    await delay(Math.max(0, waitedMs));
  }
  // A dozen statements of milliseconds each (after the drain its SQL thread is idle): two round
  // trips' deadline for all of them, the bound the commit's last look at it already has. Given
  // up, it is fenced should it answer, and the next choice decides from what the others hold.
  const st = await onCandidate(
    ctx,
    candidate,
    promoteCandidate(ctx.mysql, candidate, {
      ...promoteSemiSync(view.meta.settings),
      parallelApply: view.meta.settings.parallelApply,
      deadlineMs: 2 * answerMsOf(ctx),
    }),
  );
  return {
    next: 'repoint',
    detail: {
      gtidAtPromotion: st.gtidBinlogPos,
      promotedAt: Date.now(),
      writableGate: { why: gate.why, waitedMs: Math.max(0, Math.round(waitedMs)) },
    },
  };
}

async function repoint(ctx: FailoverContext): Promise<Result> {
  const view = await viewOf(ctx, false);
  const res = await (ctx.repointing ??
    startRepoint(ctx, view, candidateOf(ctx), view.meta.settings.semiSync !== 'off'));
  ctx.repointing = null;
  const failed: Record<string, string> = {};
  for (const [n, r] of res) if (!r.ok) failed[n] = r.error;
  const candidate = candidateOf(ctx);
  for (const n of unanswering(detailOf(ctx)))
    if (n !== candidate && repointTargets(view, candidate, ctx.oldMaster).includes(n))
      failed[n] = 'did not answer earlier in this failover: left to the workers to re-point';
  if (Object.keys(failed).length > 0) ctx.log.warn({ failed }, 'some replicas could not be re-pointed');
  return {
    next: 'commit',
    detail: { repointed: [...res].filter(([, r]) => r.ok).map(([n]) => n), repointFailed: failed },
  };
}

/** The candidate asked directly, on the connection the promotion used (one round trip when all is well). */
async function checkCandidate(ctx: FailoverContext, candidate: string): Promise<CandidateCheck> {
  return withTimeout(
    ctx.conns.run(candidate, (c) => ctx.flavor.readState(c)),
    answerMsOf(ctx),
    `check ${candidate} before the commit`,
    'MYSQL_TIMEOUT',
  ).then(
    (st): CandidateCheck => ({ kind: 'answered', readOnly: st.readOnly }),
    (err: unknown): CandidateCheck => ({
      kind: 'failed',
      errorKind: classifyMysqlError(err),
      error: errorMessage(err),
    }),
  );
}

/**
 * The ZooKeeper half of 'commit': one multi (plan.ts failoverCommit), compare-and-set on the view
 * it was built from. A concurrent route / alert / rejoin change (an operator's drain, say) only
 * costs a re-read; a moved task or master stops it. Exported for the unit tests.
 */
export async function commitFailover(
  ctx: FailoverContext,
  startedAt: number,
): Promise<HistoryRecord['steps']> {
  const candidate = candidateOf(ctx);
  const { group, epoch } = ctx;
  for (let attempt = 1; ; attempt++) {
    const view = attempt === 1 ? await viewOf(ctx, false) : await ctx.store.readView(group);
    const task = view.task;
    if (task === null || task.record.id !== ctx.journal.task.id || task.version !== ctx.journal.version)
      throw new LostLock(`task/${group} is gone or replaced`);
    if (view.master === null) throw new ZkmhaError('CONFLICT', `master/${group} vanished`);
    if (view.master.record.epoch !== epoch - 1)
      throw new ZkmhaError(
        'CONFLICT',
        `master/${group} moved to epoch ${view.master.record.epoch} meanwhile (expected ${epoch - 1})`,
      );
    const detail = detailOf(ctx);
    const steps = [...detail.steps, { name: 'commit', ms: msSince(startedAt), ok: true }];
    const acceptLoss = await ctx.store.getOrNull(ctx.store.paths.acceptLoss(group));
    try {
      await commitMasterChange(
        ctx.store,
        ctx.store.paths,
        failoverCommit({
          paths: ctx.store.paths,
          view,
          task: { record: ctx.journal.task, version: ctx.journal.version },
          detail,
          candidate,
          workerId: ctx.workerId,
          steps,
          now: Date.now(),
          acceptLoss: acceptLoss !== null ? { version: acceptLoss.stat.version } : null,
        }),
      );
      return steps;
    } catch (err) {
      const op = (err as { details?: { opIndex?: unknown } }).details?.opIndex;
      const benign =
        (isZkmhaError(err, 'ZK_BAD_VERSION') || isZkmhaError(err, 'ZK_NODE_EXISTS')) &&
        typeof op === 'number' &&
        op > 0;
      if (!benign || attempt >= 3) throw err;
      ctx.log.info({ attempt, err: errorMessage(err) }, 'commit raced with another change; reading again');
    }
  }
}

async function commit(ctx: FailoverContext, run: { readonly startedAt: number }): Promise<Result> {
  await viewOf(ctx, true);
  const candidate = candidateOf(ctx);
  const gate = commitGate(candidate, await checkCandidate(ctx, candidate));
  if (gate.kind !== 'commit') throw new CandidateNotCommittable(gate);
  const steps = await commitFailover(ctx, run.startedAt);
  ctx.committed = { newMaster: candidate, steps };
  ctx.log.info({ newMaster: candidate, steps }, 'failover committed');
  return { next: null };
}

export const FAILOVER_STEP_LIST: StepList<FailoverStep, FailoverContext> = {
  order: FAILOVER_STEPS,
  steps: { fence, choose, drain, catchup, append, promote, repoint, commit },
};
