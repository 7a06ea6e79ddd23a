import { randomBytes } from 'node:crypto';
import type { Config } from '../../core/config';
import { ZkmhaError, errorMessage } from '../../core/errors';
import type { Logger } from '../../core/log';
import type { Flavor } from '../../core/mysql/flavor';
import { Journal, LostLock, msSince, recordIncident, type HeldLock } from '../../core/op/journal';
import { runSteps } from '../../core/op/runner';
import { zkStore, type OpStore } from '../../core/op/store';
import type { NodeConnections } from '../../core/ops/connections';
import { fenceOldMaster } from '../../core/ops/promote';
import {
  encodeRecord,
  groupSettingsSchema,
  haproxySchema,
  type HistoryRecord,
  type TaskRecord,
} from '../../core/records';
import { delay } from '../../core/timeout';
import type { GroupView, Versioned } from '../../core/view';
import type { MultiOp, Zk } from '../../core/zk/client';
import type { ZkPaths } from '../../core/zk/paths';
import type { DeadHow } from '../detect';
import {
  FAILOVER_STEPS,
  blockedIncident,
  STUCK_ALERT,
  classifyFailure,
  excludeCandidate,
  failedIncident,
  fencingRead,
  noCandidateIncident,
  parseDetail,
  stuckInMs,
  stuckIncident,
  type Exclusion,
  type FailoverDetail,
  type FailoverStep,
} from './plan';
import { FAILOVER_STEP_LIST, type FailoverContext } from './steps';

/**
 * Failover (design §5.2–§5.8): the task is created with the fencing route in one multi, then
 * the named steps of ./steps.ts run over core/op's runner, which records each before it runs
 * (compare-and-set on the task's version, which also stops a worker that lost its lock: its next
 * write fails). A worker that dies mid-way loses its lock; the next holder reads the task and
 * continues from the step recorded. A step's error is classified by type (./plan.ts): no
 * candidate, choose again without the candidate, promote again, or record it and retry later.
 */
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
  /** The semi-sync policy forbids promoting with replicas unanswered (failover-blocked alert); retried later. */
  | { readonly kind: 'blocked'; readonly detail: string }
  /** The lock or the task went away under us: another worker carries on. */
  | { readonly kind: 'lost'; readonly why: string };

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
  const route = view.route;
  if (route !== null && route.record.epoch > epoch) {
    throw new ZkmhaError(
      'CONFLICT',
      `haproxy/${view.group} is at epoch ${route.record.epoch}, beyond ${epoch}`,
    );
  }
  const fenced = route !== null && route.record.epoch === epoch && route.record.write === null;
  const ops: MultiOp[] = [];
  if (!fenced) {
    const routePath = deps.paths.haproxy(view.group);
    const rec = { v: 1 as const, epoch, write: null, read: fencingRead(route, master.node) };
    const data = encodeRecord(haproxySchema, rec, routePath);
    ops.push(
      route === null
        ? { op: 'create', path: routePath, data }
        : { op: 'set', path: routePath, data, version: route.version },
    );
  }
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
      steps: [
        { name: 'confirm', ms: confirmMs, ok: true },
        { name: 'fence', ms: msSince(t0), ok: true },
      ],
      excluded: [],
      attempts: 0,
      // Refused or silent was measured a moment ago; an agent's "down" is checked once more.
      fenceMysql: how === 'agent-reports-down',
    },
  };
  return Journal.create(zkStore(deps.zk, deps.paths), view.group, task, ops);
}

/** What the failure handling needs (the unit tests give it an in-memory store). */
export interface FailureContext {
  readonly store: OpStore;
  readonly journal: Journal;
  readonly log: Logger;
  /** Makes a node read-only if it answers (bounded): a promoted candidate that is given up. */
  readonly fenceCandidate: (node: string) => Promise<void>;
}

/**
 * The answer to a step that threw (classifyFailure): each kind ends with the failure recorded —
 * the task's lastError and attempts, the failover-failed alert + history once per epoch, step
 * and error — except "no candidate", which has its own alert.
 */
export async function handleFailure(
  f: FailureContext,
  step: FailoverStep,
  err: unknown,
): Promise<FailoverOutcome> {
  const { journal, log } = f;
  const action = classifyFailure(step, err);
  switch (action.kind) {
    case 'no-candidate':
      return noCandidate(f, action.why);
    case 'blocked':
      return blocked(f, action.safety, errorMessage(err));
    case 'rechoose': {
      const candidate = journal.task.candidate!;
      // It was (or may have been) promoted: should it come back writable, make it read-only if it
      // answers at once (its agent's stray fence covers a later return: master/ does not name it).
      if (action.fenceCandidate) await f.fenceCandidate(candidate);
      const exclusion: Exclusion = {
        node: candidate,
        reason: action.reason,
        step,
        error: errorMessage(err),
        at: Date.now(),
      };
      log.warn(
        { candidate, step, reason: action.reason, err: exclusion.error },
        `candidate ${action.reason === 'timed-out' ? 'did not answer in time' : 'unreachable'}: choosing again without it`,
      );
      try {
        await journal.save({
          step: 'choose',
          candidate: null,
          detail: excludeCandidate(parseDetail(journal.task), exclusion),
        });
      } catch (e) {
        if (e instanceof LostLock) return { kind: 'lost', why: e.message };
      }
      return recordFailure(f, step, err, exclusion);
    }
    case 'repromote':
      log.warn(
        { candidate: journal.task.candidate },
        'candidate read-only before the commit: promoting it again',
      );
      try {
        await journal.save({ step: 'promote' });
      } catch (e) {
        if (e instanceof LostLock) return { kind: 'lost', why: e.message };
      }
      return recordFailure(f, step, err);
    case 'retry':
      return recordFailure(f, step, err);
  }
}

async function recordFailure(
  f: FailureContext,
  step: FailoverStep,
  err: unknown,
  exclusion?: Exclusion,
): Promise<FailoverOutcome> {
  const { journal, store, log } = f;
  const message = errorMessage(err);
  log.error({ step, err: message }, 'failover step failed');
  try {
    const view = await store.readView(journal.group);
    const detail = parseDetail(journal.task);
    const next: FailoverDetail = {
      ...detail,
      lastError: { step, message, at: Date.now() },
      attempts: detail.attempts + 1,
    };
    const withOps = view.task !== null && journal.lock.isHeld() ? [journal.saveOp({ detail: next })] : [];
    await recordIncident(
      store,
      journal.group,
      { ...failedIncident(journal.task, detail, step, message, exclusion), withOps },
      { view },
    );
  } catch (e) {
    log.warn({ err: errorMessage(e) }, 'could not record the failed step');
  }
  return { kind: 'failed', step, error: message };
}

async function noCandidate(f: FailureContext, why: string): Promise<FailoverOutcome> {
  f.log.error({ detail: why }, 'no replica can be promoted');
  try {
    await recordIncident(
      f.store,
      f.journal.group,
      noCandidateIncident(f.journal.task, parseDetail(f.journal.task), why),
    );
  } catch (e) {
    f.log.warn({ err: errorMessage(e) }, 'could not record the no-candidate alert');
  }
  return { kind: 'no-candidate', detail: why };
}

/**
 * Blocked by the semi-sync policy (replicas unanswered, no append): back to 'choose' — when it
 * comes again every replica is asked again, and a replica that answers may be the one to promote
 * — then the failover-blocked alert naming them, once per epoch and set of replicas.
 */
async function blocked(
  f: FailureContext,
  safety: Parameters<typeof blockedIncident>[2],
  why: string,
): Promise<FailoverOutcome> {
  const { journal, log } = f;
  log.error({ unanswered: safety.unanswered }, why);
  const detail = parseDetail(journal.task);
  if (journal.task.candidate !== null || journal.task.step !== 'choose') {
    // The candidate may have caught up from a source: it still counts as the old master's data.
    const source = detail.catchUpFrom?.node;
    try {
      await journal.save({
        step: 'choose',
        candidate: null,
        detail: {
          ...detail,
          catchUpFrom: null,
          safety: undefined,
          formerSources: [...detail.formerSources, ...(source !== undefined ? [source] : [])],
        },
      });
    } catch (e) {
      if (e instanceof LostLock) return { kind: 'lost', why: e.message };
      log.warn({ err: errorMessage(e) }, 'could not record the blocked failover');
    }
  }
  try {
    await recordIncident(
      f.store,
      journal.group,
      blockedIncident(journal.task, parseDetail(journal.task), safety, journal.group),
    );
  } catch (e) {
    log.warn({ err: errorMessage(e) }, 'could not record the failover-blocked alert');
  }
  return { kind: 'blocked', detail: why };
}

/** Runs (or resumes) the failover recorded in `task` while `lock` is held. */
export async function runFailover(
  deps: FailoverDeps,
  group: string,
  initial: Versioned<TaskRecord>,
  lock: HeldLock,
  opts: { readonly resumed: boolean; readonly view?: GroupView },
): Promise<FailoverOutcome> {
  const { cfg } = deps;
  const store = zkStore(deps.zk, deps.paths);
  // The detail as the steps read it (defaults filled in), so that every write carries them.
  const record: TaskRecord = { ...initial.record, detail: parseDetail(initial.record) };
  const journal = new Journal(store, group, lock, deps.workerId, { record, version: initial.version });
  const { epoch, oldMaster } = record;
  const log = deps.log.child({ group, task: record.id, epoch, oldMaster });
  const mysql = { flavor: deps.flavor, conns: deps.conns };
  const failure: FailureContext = {
    store,
    journal,
    log,
    fenceCandidate: async (node) => {
      await fenceOldMaster(mysql, node, {
        timeoutMs: Math.min(cfg.mysql.connectTimeoutMs, 500),
        keepUsers: [cfg.mysql.user, cfg.mysql.replicationUser],
      });
    },
  };
  if (epoch === undefined || oldMaster === null)
    return recordFailure(
      failure,
      'fence',
      new ZkmhaError('BAD_RECORD', `task/${group} has no epoch or old master`),
    );
  if (!(FAILOVER_STEPS as readonly string[]).includes(record.step))
    return recordFailure(
      failure,
      'fence',
      new ZkmhaError('BAD_RECORD', `task/${group}: unknown step '${record.step}'`),
    );
  if (opts.resumed) log.warn({ step: record.step, previousWorker: record.worker }, 'resuming failover');

  const ctx: FailoverContext = {
    store,
    journal,
    cfg,
    log,
    mysql,
    conns: deps.conns,
    flavor: deps.flavor,
    workerId: deps.workerId,
    group,
    epoch,
    oldMaster,
    resumed: opts.resumed,
    lastView: opts.view ?? null,
    repointing: null,
    committed: null,
  };
  const stuck = watchStuck(failure, await failoverTimeoutOf(store, group, opts.view));
  try {
    for (let round = 1; ; round++) {
      const r = await runSteps(journal, FAILOVER_STEP_LIST, ctx, {
        log,
        pauseBeforeStep: deps.pauseBeforeStep,
      });
      switch (r.kind) {
        case 'ended':
          await stuck.stop();
          await clearStuck(store, group, log);
          return { kind: 'done', newMaster: ctx.committed!.newMaster, epoch, steps: ctx.committed!.steps };
        case 'lost':
          log.warn({ why: r.why }, 'stopping: another worker owns the failover now');
          return { kind: 'lost', why: r.why };
        case 'failed': {
          const out = await handleFailure(failure, r.step, r.error);
          // A candidate given up (refused, or silent past its deadline): choose again at once, not
          // after the worker's retry interval — the writes are cut meanwhile. Bounded, so that a
          // candidate that answers the choice but never a drain cannot spin here.
          if (
            out.kind === 'failed' &&
            classifyFailure(r.step, r.error).kind === 'rechoose' &&
            round < MAX_CHOICES_PER_RUN
          ) {
            ctx.lastView = null;
            ctx.repointing = null;
            try {
              // The failure was recorded with the task in the incident's multi: read its version.
              await journal.reload((t) => ({ ...t, detail: parseDetail(t) }));
            } catch (err) {
              if (err instanceof LostLock) return { kind: 'lost', why: err.message };
              return out;
            }
            continue;
          }
          return out;
        }
      }
    }
  } finally {
    await stuck.stop();
  }
}

/** Choices one run makes after giving candidates up, before it hands back to the worker's retry. */
const MAX_CHOICES_PER_RUN = 4;

/** settings.failoverTimeoutMs of the group (its default when the record cannot be read now). */
async function failoverTimeoutOf(store: OpStore, group: string, view?: GroupView): Promise<number> {
  try {
    const meta = (view ?? (await store.readView(group))).meta;
    if (meta !== null) return meta.settings.failoverTimeoutMs;
  } catch {
    // the default below; the steps will meet the same trouble and say so
  }
  return groupSettingsSchema.parse({}).failoverTimeoutMs;
}

/**
 * settings.failoverTimeoutMs (design §11): while this worker runs the failover, a timer raises
 * `watch_down/<group>__failover-stuck` once the failover is older than that (at once when an
 * attempt starts late), and the failover goes on trying. Written only while this very task
 * exists (recordIncident whileTask), so it cannot appear after the commit that clears it.
 */
export function watchStuck(f: FailureContext, timeoutMs: number): { stop(): Promise<void> } {
  const { store, journal, log } = f;
  let stopped = false;
  let pending: Promise<void> = Promise.resolve();
  const raise = async (): Promise<void> => {
    for (let attempt = 1; attempt <= 5 && !stopped; attempt++) {
      try {
        const task = journal.task;
        const r = await recordIncident(
          store,
          journal.group,
          stuckIncident(task, parseDetail(task), timeoutMs, Date.now()),
          { whileTask: task.id },
        );
        if (r === 'written')
          log.error(
            { step: task.step, candidate: task.candidate, failoverTimeoutMs: timeoutMs },
            'failover not committed within failoverTimeoutMs: failover-stuck alert raised, still trying',
          );
        return;
      } catch (err) {
        log.warn({ err: errorMessage(err), attempt }, 'could not record the failover-stuck alert');
        await delay(200);
      }
    }
  };
  const timer = setTimeout(
    () => {
      pending = raise();
    },
    Math.max(0, stuckInMs(journal.task.startedAt, timeoutMs, Date.now())),
  );
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await pending;
    },
  };
}

/**
 * After the commit: the failover-stuck alert of this group, if one is left (the commit's multi
 * deletes the one it saw; this catches one written between its read and its multi).
 */
async function clearStuck(store: OpStore, group: string, log: Logger): Promise<void> {
  const path = store.paths.watchDown(group, STUCK_ALERT);
  try {
    const nd = await store.getOrNull(path);
    if (nd !== null) await store.delete(path, nd.stat.version);
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'could not clear the failover-stuck alert');
  }
}
