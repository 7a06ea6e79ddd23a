import { promoteSemiSync } from '../core/semisync';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { chooseCandidate } from '../core/candidate';
import type { Config } from '../core/config';
import { ZkmhaError, errorMessage, isZkmhaError } from '../core/errors';
import type { Logger } from '../core/log';
import { classifyMysqlError, type MysqlErrorKind } from '../core/mysql/connection';
import type { Flavor } from '../core/mysql/flavor';
import { alertOps, commitMasterChange, historyOps, writeFencingRoute } from '../core/ops/commit';
import type { NodeConnections } from '../core/ops/connections';
import { readGtidPositions } from '../core/ops/positions';
import {
  catchUpFrom,
  drainReplica,
  fenceOldMaster,
  promoteCandidate,
  repointReplicas,
  type OpsContext,
  type RepointResult,
} from '../core/ops/promote';
import {
  encodeRecord,
  haproxySchema,
  taskSchema,
  type HistoryRecord,
  type TaskRecord,
} from '../core/records';
import { delay, withTimeout } from '../core/timeout';
import { alertOf, member, readGroupView, type GroupView, type Versioned } from '../core/view';
import type { LockHandle } from '../core/zk/lock';
import type { MultiOp, Zk } from '../core/zk/client';
import type { ZkPaths } from '../core/zk/paths';
import { FAILOVER_ALERT, type DeadHow } from './detect';

/**
 * Failover (design §5.2–§5.8) as a list of named, idempotent steps. Before a step runs, its name
 * is written to `task/<group>.step` (compare-and-set on the task's version, which also stops a
 * worker that lost its lock: its next write fails). A worker that dies mid-way loses its lock;
 * the next holder reads the task and continues from the step recorded, so nothing is repeated
 * that could do harm (each step checks what is already done).
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
export const FAILOVER_STEPS = [
  'fence',
  'choose',
  'drain',
  'catchup',
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
    sourceTarget: z.string().optional(),
    gtidAtPromotion: z.string().optional(),
    /** Local clock (ms) when the candidate became writable. */
    promotedAt: z.number().optional(),
    repointed: z.array(z.string()).optional(),
    repointFailed: z.record(z.string()).optional(),
    lastError: z.object({ step: z.string(), message: z.string(), at: z.number() }).optional(),
    /** The old master's MySQL fencing is still to be done (in parallel with the choice). */
    fenceMysql: z.boolean().optional(),
    attempts: z.number().int().nonnegative().default(0),
  })
  .passthrough();
export type FailoverDetail = z.infer<typeof detailSchema>;

export function parseDetail(task: TaskRecord): FailoverDetail {
  const r = detailSchema.safeParse(task.detail);
  return r.success ? r.data : detailSchema.parse({});
}

export interface FailoverDeps {
  readonly zk: Zk;
  readonly paths: ZkPaths;
  readonly cfg: Config;
  readonly log: Logger;
  readonly conns: NodeConnections;
  readonly flavor: Flavor;
  readonly workerId: string;
  /** Fault injection for tests: pause this long before running this step (after recording it). */
  readonly pauseBeforeStep?: { readonly step: FailoverStep; readonly ms: number };
}

export type FailoverOutcome =
  | {
      readonly kind: 'done';
      readonly newMaster: string;
      readonly epoch: number;
      readonly steps: HistoryRecord['steps'];
    }
  /** Stopped at a step; task/ says where; an alert says why. Retried later. */
  | { readonly kind: 'failed'; readonly step: FailoverStep; readonly error: string }
  /** No replica can be promoted right now (alert written); retried later. */
  | { readonly kind: 'no-candidate'; readonly detail: string }
  /** The lock or the task went away under us: another worker carries on. */
  | { readonly kind: 'lost'; readonly why: string };

class LostLock extends Error {}
class NoCandidate extends Error {}

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
class CandidateNotCommittable extends Error {
  constructor(readonly gate: Exclude<CommitGate, { kind: 'commit' }>) {
    super(gate.why);
  }
}

/**
 * Starts a failover for a confirmed dead master: ONE multi creates task/<group> and writes the
 * fencing route (`write: null`, epoch+1, CAS) — so the task's first recorded step is already
 * done and it says 'choose'. If another worker created the task first, returns theirs.
 */
export async function createFailoverTask(
  deps: FailoverDeps,
  view: GroupView,
  how: DeadHow,
  detectedAt: number,
  confirmMs: number,
): Promise<{ task: Versioned<TaskRecord>; created: boolean }> {
  const t0 = performance.now();
  const master = view.master!.record;
  const epoch = master.epoch + 1;
  const path = deps.paths.task(view.group);
  const route = view.route;
  if (route !== null && route.record.epoch > epoch) {
    throw new ZkmhaError(
      'CONFLICT',
      `haproxy/${view.group} is at epoch ${route.record.epoch}, beyond ${epoch}`,
    );
  }
  const fenced = route !== null && route.record.epoch === epoch && route.record.write === null;
  const task: TaskRecord = {
    v: 1,
    id: `${view.group}-e${epoch}-${randomBytes(3).toString('hex')}`,
    kind: 'failover',
    step: 'choose',
    oldMaster: master.node,
    candidate: null,
    startedAt: Date.now(),
    worker: deps.workerId,
    epoch,
    detail: {
      how,
      detectedAt,
      steps: [{ name: 'confirm', ms: confirmMs, ok: true }],
      excluded: [],
      attempts: 0,
      // Refused or silent was measured a moment ago; an agent's "down" is checked once more.
      fenceMysql: how === 'agent-reports-down',
    },
  };
  const ops: MultiOp[] = [];
  if (!fenced) {
    const routePath = deps.paths.haproxy(view.group);
    const rec = {
      v: 1 as const,
      epoch,
      write: null,
      read: (route?.record.read ?? []).filter((n) => n !== master.node),
    };
    const data = encodeRecord(haproxySchema, rec, routePath);
    ops.push(
      route === null
        ? { op: 'create', path: routePath, data }
        : { op: 'set', path: routePath, data, version: route.version },
    );
  }
  try {
    const ms = Math.round((performance.now() - t0) * 1000) / 1000;
    const rec: TaskRecord = {
      ...task,
      detail: {
        ...task.detail,
        steps: [...(task.detail.steps as unknown[]), { name: 'fence', ms, ok: true }],
      },
    };
    await deps.zk.multi([{ op: 'create', path, data: encodeRecord(taskSchema, rec, path) }, ...ops]);
    return { task: { record: rec, version: 0 }, created: true };
  } catch (err) {
    if (!(isZkmhaError(err, 'ZK_NODE_EXISTS') || isZkmhaError(err, 'ZK_BAD_VERSION'))) throw err;
    const again = await readGroupView(deps.zk, deps.paths, view.group);
    if (again.task === null)
      throw new ZkmhaError('CONFLICT', `task/${view.group} or haproxy/${view.group} changed concurrently`);
    return { task: again.task, created: false };
  }
}

/**
 * Seam for design §5.6 "if the old master's agent is alive, ask it to append what the candidate
 * lacks": not implemented yet (the agent has no such endpoint). Returns false = nothing appended.
 */
async function appendFromOldMaster(
  _deps: FailoverDeps,
  _view: GroupView,
  _candidate: string,
): Promise<boolean> {
  return false;
}

/** Runs (or resumes) the failover recorded in `task` while `lock` is held. */
export async function runFailover(
  deps: FailoverDeps,
  group: string,
  initial: Versioned<TaskRecord>,
  lock: LockHandle,
  opts: { readonly resumed: boolean; readonly view?: GroupView },
): Promise<FailoverOutcome> {
  const { zk, paths, cfg, log } = deps;
  const ops: OpsContext = { flavor: deps.flavor, conns: deps.conns };
  const replication = { user: cfg.mysql.replicationUser, password: cfg.mysql.replicationPassword };
  let task = initial.record;
  let version = initial.version;
  let detail = parseDetail(task);
  const epoch = task.epoch;
  const oldMaster = task.oldMaster;
  const tlog = log.child({ group, task: task.id, epoch, oldMaster });
  if (epoch === undefined || oldMaster === null) {
    return fail('fence', new ZkmhaError('BAD_RECORD', `task/${group} has no epoch or old master`));
  }

  /** Writes the task (CAS). Losing the lock or the CAS means another worker owns it now. */
  async function saveTask(next: Partial<TaskRecord>, nextDetail: FailoverDetail): Promise<void> {
    if (!lock.isHeld()) throw new LostLock('lock lost');
    const rec: TaskRecord = { ...task, ...next, worker: deps.workerId, detail: nextDetail };
    const path = paths.task(group);
    try {
      const st = await zk.set(path, encodeRecord(taskSchema, rec, path), version);
      version = st.version;
      task = rec;
      detail = nextDetail;
    } catch (err) {
      if (isZkmhaError(err, 'ZK_BAD_VERSION') || isZkmhaError(err, 'ZK_NO_NODE'))
        throw new LostLock(`task/${group} changed under us`);
      throw err;
    }
  }

  async function fail(step: FailoverStep, err: unknown): Promise<FailoverOutcome> {
    const message = errorMessage(err);
    tlog.error({ step, err: message }, 'failover step failed');
    try {
      const view = await readGroupView(zk, paths, group);
      const prev = alertOf(view, 'failover-failed');
      const same =
        prev !== undefined &&
        prev.record.detail.epoch === epoch &&
        prev.record.detail.step === step &&
        prev.record.detail.error === message;
      const multi: MultiOp[] = [];
      if (view.task !== null && lock.isHeld()) {
        const d: FailoverDetail = {
          ...detail,
          lastError: { step, message, at: Date.now() },
          attempts: detail.attempts + 1,
        };
        multi.push({
          op: 'set',
          path: paths.task(group),
          data: encodeRecord(taskSchema, { ...task, detail: d }, paths.task(group)),
          version,
        });
      }
      if (!same) {
        const now = Date.now();
        multi.push(
          ...alertOps(
            paths,
            group,
            'failover-failed',
            {
              kind: 'failover-failed',
              at: now,
              detail: { epoch, step, error: message, oldMaster, candidate: task.candidate },
            },
            prev?.version ?? null,
          ),
        );
        multi.push(
          ...historyOps(paths, group, {
            kind: 'failover-failed',
            from: oldMaster,
            to: task.candidate,
            epoch: epoch!,
            startedAt: task.startedAt,
            endedAt: now,
            steps: [...detail.steps, { name: step, ms: 0, ok: false }],
            detail: { step, error: message },
          }),
        );
      }
      if (multi.length > 0) {
        await zk.mkdirp(paths.historyDir(group));
        await zk.multi(multi);
      }
    } catch (e) {
      tlog.warn({ err: errorMessage(e) }, 'could not record the failed step');
    }
    return { kind: 'failed', step, error: message };
  }

  async function noCandidate(text: string): Promise<FailoverOutcome> {
    tlog.error({ detail: text }, 'no replica can be promoted');
    try {
      const view = await readGroupView(zk, paths, group);
      const prev = alertOf(view, 'no-candidate');
      if (!(prev !== undefined && prev.record.detail.epoch === epoch && prev.record.detail.why === text)) {
        const now = Date.now();
        await zk.mkdirp(paths.historyDir(group));
        await zk.multi([
          ...alertOps(
            paths,
            group,
            'no-candidate',
            { kind: 'no-candidate', at: now, detail: { epoch, oldMaster, why: text } },
            prev?.version ?? null,
          ),
          ...historyOps(paths, group, {
            kind: 'failover-blocked',
            from: oldMaster,
            to: null,
            epoch: epoch!,
            startedAt: task.startedAt,
            endedAt: now,
            steps: detail.steps,
            detail: { reason: 'no-candidate', why: text },
          }),
        ]);
      }
    } catch (e) {
      tlog.warn({ err: errorMessage(e) }, 'could not record the no-candidate alert');
    }
    return { kind: 'no-candidate', detail: text };
  }

  /** Excludes the candidate and goes back to 'choose' (retried by the worker after the failure). */
  async function chooseAgain(step: FailoverStep, err: unknown): Promise<FailoverOutcome> {
    const excluded = [...detail.excluded, task.candidate!];
    tlog.warn(
      { candidate: task.candidate, step, err: errorMessage(err) },
      'candidate unreachable: choosing again without it',
    );
    try {
      await saveTask({ step: 'choose', candidate: null }, { ...detail, excluded, catchUpFrom: null });
    } catch (e) {
      if (e instanceof LostLock) return { kind: 'lost', why: e.message };
    }
    return fail(step, err);
  }

  const settingsOf = (view: GroupView) => view.meta!.settings;
  let step = task.step as FailoverStep;
  if (!FAILOVER_STEPS.includes(step))
    return fail('fence', new ZkmhaError('BAD_RECORD', `task/${group}: unknown step '${task.step}'`));
  if (opts.resumed) tlog.warn({ step, previousWorker: task.worker }, 'resuming failover');

  let lastView: GroupView | null = opts.view ?? null;
  /** Replicas to re-point: every member but the candidate, the old master and nodes awaiting rejoin. */
  const toRepoint = (view: GroupView, candidate: string): string[] =>
    view.members
      .filter((m) => m.node !== candidate && m.node !== oldMaster && m.rejoin === null)
      .map((m) => m.node);
  let repointing: Promise<Map<string, RepointResult>> | null = null;
  const startRepoint = (
    view: GroupView,
    candidate: string,
    semiSync: boolean,
  ): Promise<Map<string, RepointResult>> =>
    repointReplicas(ops, toRepoint(view, candidate), candidate, { replication, semiSync, timeoutMs: 5000 });
  async function fenceMysql(): Promise<void> {
    const f = await fenceOldMaster(ops, oldMaster!, {
      timeoutMs: Math.min(cfg.mysql.connectTimeoutMs, 1000),
      keepUsers: [cfg.mysql.user, cfg.mysql.replicationUser],
    });
    tlog.info(
      { fence: f.kind, ...(f.kind === 'fenced' ? { killed: f.killed } : { error: f.error }) },
      'old master fencing',
    );
  }
  for (;;) {
    if (deps.pauseBeforeStep?.step === step) {
      tlog.warn({ step, ms: deps.pauseBeforeStep.ms }, 'fault injection: pausing before step');
      await delay(deps.pauseBeforeStep.ms);
    }
    const t0 = performance.now();
    let next: FailoverStep;
    let patch: Partial<TaskRecord> = {};
    let dpatch: Partial<FailoverDetail> = {};
    try {
      if (!lock.isHeld()) throw new LostLock('lock lost');
      // Steps that write ZooKeeper or choose read a fresh snapshot; the MySQL-only steps reuse it
      // (the task's compare-and-set still catches any concurrent change).
      if (lastView === null || step === 'fence' || step === 'commit') {
        lastView = await readGroupView(zk, paths, group);
        if (lastView.task === null || lastView.task.record.id !== task.id)
          throw new LostLock(`task/${group} is gone or replaced`);
      }
      const view = lastView;
      if (view.meta === null || view.master === null)
        throw new ZkmhaError('CONFLICT', `meta_group/ or master/ of ${group} vanished`);
      const settings = settingsOf(view);
      switch (step) {
        case 'fence': {
          const route = view.route;
          if (route === null || route.record.epoch !== epoch || route.record.write !== null) {
            if (route !== null && route.record.epoch > epoch)
              throw new ZkmhaError(
                'CONFLICT',
                `haproxy/${group} is at epoch ${route.record.epoch}, beyond this failover's ${epoch}`,
              );
            await writeFencingRoute(zk, paths, group, {
              epoch,
              read: (route?.record.read ?? []).filter((n) => n !== oldMaster),
              version: route?.version ?? null,
            });
          }
          // Just confirmed refused or silent: another attempt would only cost time. Otherwise
          // (resumed, or an agent said "down") make sure it takes no write if it answers.
          const how = detail.how;
          if (opts.resumed || !(how === 'refused' || how === 'unreachable')) await fenceMysql();
          next = 'choose';
          break;
        }
        case 'choose': {
          if (task.candidate !== null) {
            next = 'drain';
            break;
          }
          const nodes = view.members.map((m) => m.node).filter((n) => n !== oldMaster);
          const [{ positions }] = await Promise.all([
            readGtidPositions(deps.conns, deps.flavor, nodes, Math.max(1000, cfg.mysql.connectTimeoutMs * 2)),
            detail.fenceMysql === true ? fenceMysql() : Promise.resolve(),
          ]);
          dpatch = { fenceMysql: false };
          const choice = chooseCandidate(view, positions, {
            oldMaster,
            exclude: detail.excluded,
            acceptedMasters: [oldMaster, ...detail.excluded],
          });
          if (choice.kind === 'none') throw new NoCandidate(`${choice.reason}: ${choice.detail}`);
          tlog.info({ candidate: choice.node, reason: choice.reason }, 'candidate chosen');
          patch = { candidate: choice.node };
          dpatch = { fenceMysql: false, choiceReason: choice.reason, catchUpFrom: choice.catchUpFrom };
          next = 'drain';
          break;
        }
        case 'drain': {
          const candidate = task.candidate!;
          const source = detail.catchUpFrom ?? null;
          // Meanwhile the other replicas stop receiving too (nothing more can come from the old
          // master, and their re-pointing later is quicker with the IO thread already stopped).
          const others = toRepoint(view, candidate).filter((n) => n !== source?.node);
          const [c, s] = await Promise.all([
            drainReplica(ops, candidate, { timeoutMs: settings.drainTimeoutMs }),
            source !== null
              ? drainReplica(ops, source.node, { timeoutMs: settings.drainTimeoutMs })
              : Promise.resolve(null),
            ...others.map((n) =>
              withTimeout(
                deps.conns.run(n, (conn) => deps.flavor.stopIoThread(conn)),
                2000,
                `stop IO thread on ${n}`,
              ).catch((err: unknown) =>
                tlog.info({ node: n, err: errorMessage(err) }, 'could not stop IO thread (re-pointed later)'),
              ),
            ),
          ]);
          if (!c.applied)
            throw new ZkmhaError(
              'TIMEOUT',
              `${candidate} did not apply what it received (${c.target}) within ${settings.drainTimeoutMs} ms`,
            );
          if (s !== null && !s.applied)
            throw new ZkmhaError(
              'TIMEOUT',
              `catch-up source ${source!.node} did not apply what it received (${s.target}) within ${settings.drainTimeoutMs} ms`,
            );
          const m = member(view, oldMaster);
          if (m?.agent !== null && m?.agent !== undefined) await appendFromOldMaster(deps, view, candidate);
          dpatch = { drainTarget: c.target, ...(s !== null ? { sourceTarget: s.target } : {}) };
          next = source !== null && s !== null && s.target !== '' ? 'catchup' : 'promote';
          break;
        }
        case 'catchup': {
          const candidate = task.candidate!;
          const source = detail.catchUpFrom;
          if (
            source !== null &&
            source !== undefined &&
            detail.sourceTarget !== undefined &&
            detail.sourceTarget !== ''
          ) {
            const ok = await catchUpFrom(
              ops,
              candidate,
              { node: source.node, target: detail.sourceTarget },
              { timeoutMs: settings.drainTimeoutMs, replication },
            );
            if (!ok)
              throw new ZkmhaError(
                'TIMEOUT',
                `${candidate} did not catch up from ${source.node} to ${detail.sourceTarget} within ${settings.drainTimeoutMs} ms`,
              );
            tlog.info(
              { source: source.node, target: detail.sourceTarget },
              'candidate caught up from a more advanced replica',
            );
          }
          next = 'promote';
          break;
        }
        case 'promote': {
          // The other replicas are re-pointed while the candidate is promoted: everything they
          // lack is already in its binlog (drained), and their semi-sync registration holds.
          repointing = startRepoint(view, task.candidate!, settings.semiSync !== 'off');
          const st = await promoteCandidate(ops, task.candidate!, promoteSemiSync(settings));
          dpatch = { gtidAtPromotion: st.gtidBinlogPos, promotedAt: Date.now() };
          next = 'repoint';
          break;
        }
        case 'repoint': {
          const res = await (repointing ?? startRepoint(view, task.candidate!, settings.semiSync !== 'off'));
          repointing = null;
          const failed: Record<string, string> = {};
          for (const [n, r] of res) if (!r.ok) failed[n] = r.error;
          if (Object.keys(failed).length > 0) tlog.warn({ failed }, 'some replicas could not be re-pointed');
          dpatch = { repointed: [...res].filter(([, r]) => r.ok).map(([n]) => n), repointFailed: failed };
          next = 'commit';
          break;
        }
        case 'commit': {
          const candidate = task.candidate!;
          // On the connection the promotion used: one round trip when all is well.
          const check: CandidateCheck = await withTimeout(
            deps.conns.run(candidate, (c) => deps.flavor.readState(c)),
            Math.max(1000, 2 * cfg.mysql.connectTimeoutMs),
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
          const gate = commitGate(candidate, check);
          if (gate.kind !== 'commit') throw new CandidateNotCommittable(gate);
          let steps: HistoryRecord['steps'] = [];
          // A concurrent route / alert / rejoin change (an operator's drain, say) only costs a re-read.
          for (let attempt = 1; ; attempt++) {
            const view = attempt === 1 ? lastView : await readGroupView(zk, paths, group);
            if (view.task === null || view.task.record.id !== task.id || view.task.version !== version)
              throw new LostLock(`task/${group} is gone or replaced`);
            if (view.master === null) throw new ZkmhaError('CONFLICT', `master/${group} vanished`);
            const master = view.master;
            if (master.record.epoch !== epoch - 1)
              throw new ZkmhaError(
                'CONFLICT',
                `master/${group} moved to epoch ${master.record.epoch} meanwhile (expected ${epoch - 1})`,
              );
            const drained = new Set(
              view.members.filter((m) => m.slaveDown?.record.drained === true).map((m) => m.node),
            );
            const read = (detail.repointed ?? []).filter((n) => !drained.has(n));
            const now = Date.now();
            steps = [
              ...detail.steps,
              { name: 'commit', ms: Math.round((performance.now() - t0) * 1000) / 1000, ok: true },
            ];
            const prevAlert = alertOf(view, FAILOVER_ALERT);
            const old = member(view, oldMaster);
            try {
              await commitMasterChange(zk, paths, {
                group,
                newMaster: candidate,
                epoch,
                reason: 'failover',
                masterVersion: master.version,
                route: { read, version: view.route?.version ?? null },
                history: {
                  kind: 'failover',
                  from: oldMaster,
                  to: candidate,
                  startedAt: task.startedAt,
                  endedAt: now,
                  steps,
                  detail: {
                    how: detail.how,
                    detectedAt: detail.detectedAt,
                    choice: detail.choiceReason,
                    catchUpFrom: detail.catchUpFrom ?? null,
                    repointFailed: detail.repointFailed ?? {},
                    gtidAtPromotion: detail.gtidAtPromotion ?? '',
                    worker: deps.workerId,
                    appended: false,
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
                          group,
                          newMaster: candidate,
                          epoch,
                          promotedAt: now,
                          gtidAtPromotion: detail.gtidAtPromotion ?? '',
                        },
                        version: old.rejoin?.version ?? null,
                      },
                    }
                  : {}),
                taskVersion: version,
                extraOps: alertOps(
                  paths,
                  group,
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
              });
              break;
            } catch (err) {
              const op = (err as { details?: { opIndex?: unknown } }).details?.opIndex;
              const benign =
                (isZkmhaError(err, 'ZK_BAD_VERSION') || isZkmhaError(err, 'ZK_NODE_EXISTS')) &&
                typeof op === 'number' &&
                op > 0;
              if (!benign || attempt >= 3) throw err;
              tlog.info(
                { attempt, err: errorMessage(err) },
                'commit raced with another change; reading again',
              );
            }
          }
          tlog.info({ newMaster: candidate, steps }, 'failover committed');
          return { kind: 'done', newMaster: candidate, epoch, steps };
        }
      }
    } catch (err) {
      if (err instanceof LostLock) {
        tlog.warn({ why: err.message }, 'stopping: another worker owns the failover now');
        return { kind: 'lost', why: err.message };
      }
      if (err instanceof NoCandidate) return noCandidate(err.message);
      // The candidate died under us before the route named it: choose again without it.
      if (
        task.candidate !== null &&
        (step === 'drain' || step === 'catchup' || step === 'promote') &&
        classifyMysqlError(err) === 'refused' &&
        errorMessage(err).includes(task.candidate)
      )
        return chooseAgain(step, err);
      if (err instanceof CandidateNotCommittable) {
        if (err.gate.kind === 'rechoose') {
          // It was promoted: should it come back writable, make it read-only if it answers at
          // once (its agent's stray fence covers a later return: master/ does not name it).
          await fenceOldMaster(ops, task.candidate!, {
            timeoutMs: Math.min(cfg.mysql.connectTimeoutMs, 500),
            keepUsers: [cfg.mysql.user, cfg.mysql.replicationUser],
          });
          return chooseAgain(step, err);
        }
        if (err.gate.kind === 'repromote') {
          tlog.warn(
            { candidate: task.candidate },
            'candidate read-only before the commit: promoting it again',
          );
          try {
            await saveTask({ step: 'promote' }, detail);
          } catch (e) {
            if (e instanceof LostLock) return { kind: 'lost', why: e.message };
          }
        }
      }
      return fail(step, err);
    }
    const ms = Math.round((performance.now() - t0) * 1000) / 1000;
    const nextDetail: FailoverDetail = {
      ...detail,
      ...dpatch,
      steps: [...detail.steps, { name: step, ms, ok: true }],
    };
    try {
      await saveTask({ ...patch, step: next }, nextDetail);
    } catch (err) {
      if (err instanceof LostLock) return { kind: 'lost', why: err.message };
      return fail(next, err);
    }
    step = next;
  }
}
