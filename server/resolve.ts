import { promoteSemiSync } from '../core/semisync';
import { randomBytes } from 'node:crypto';
import type { NodePosition } from '../core/candidate';
import { ZkmhaError, errorMessage, isZkmhaError } from '../core/errors';
import { parseNode } from '../core/names';
import {
  StepTimer,
  alertOps,
  commitMasterChange,
  fenceOldMaster,
  historyOps,
  promoteCandidate,
  readGtidPositions,
  repointReplicas,
  rollBackSwitchover,
  type AbandonedStep,
  type OpsContext,
} from '../core/ops';
import {
  encodeRecord,
  taskSchema,
  type AlertKind,
  type HistoryRecord,
  type TaskRecord,
} from '../core/records';
import { Journal, LostLock, recordIncident } from '../core/op/journal';
import { zkStore } from '../core/op/store';
import { alertOf, member, readGroupView } from '../core/view';
import type { MultiOp } from '../core/zk/client';
import type { LockHandle } from '../core/zk/lock';
import { describeResolution, resolveAbandoned, routeIsCut, taskKey, type Resolution } from './abandoned';
import type { FailoverDeps } from './failover';

/**
 * Acts on an abandoned switchover / add (decided by the pure `resolveAbandoned`), holding
 * lock/<group>. Every outcome is written with a `watch_down/<group>__operation-abandoned` alert
 * for humans; a master change also with a `history/<group>` event (kind `switchover-abandoned`)
 * saying what was done and why. Before acting, the worker takes the task over (its id and step
 * in task/, compare-and-set): a process that was only presumed dead can then no longer commit,
 * and a worker that dies meanwhile leaves a task the next one resolves the same way.
 */
export const ABANDONED_ALERT = 'operation-abandoned' satisfies AlertKind;
export const ABANDONED_HISTORY = 'switchover-abandoned';

/** What resolving an abandoned operation needs: a failover's dependencies, without its fault hook. */
export type ResolveDeps = Omit<FailoverDeps, 'pauseBeforeStep'>;

export type ResolveOutcome =
  | {
      readonly kind: 'resolved';
      readonly resolution: 'rolled-back' | 'rolled-forward' | 'handed-to-failover';
      readonly master: string | null;
      readonly epoch: number;
    }
  | { readonly kind: 'alerted'; readonly retry: boolean; readonly why: string }
  /** A step failed: the task stays (taken over by this worker), an alert says why; retried. */
  | { readonly kind: 'failed'; readonly error: string }
  /** The task is gone or changed since it was judged abandoned: look again. */
  | { readonly kind: 'stale' };

class Stale extends Error {}

export async function resolveAbandonedTask(
  deps: ResolveDeps,
  group: string,
  lock: LockHandle,
  expect: { readonly key: string; readonly why: string },
): Promise<ResolveOutcome> {
  const { zk, paths, cfg, log } = deps;
  const store = zkStore(zk, paths);
  const view = await readGroupView(zk, paths, group);
  const vt = view.task;
  if (vt === null || taskKey(vt) !== expect.key || !lock.isHeld()) return { kind: 'stale' };
  const task = vt.record;
  const tlog = log.child({ group, task: task.id, kind: task.kind, step: task.step, previous: task.worker });
  const ops: OpsContext = { flavor: deps.flavor, conns: deps.conns };

  /** Logged as a warning, except an alert-only decision already reported (looked at again each tick). */
  const note = (r: Resolution, extra: Record<string, unknown>): void => {
    const prev = alertOf(view, ABANDONED_ALERT)?.record.detail;
    const repeat = r.kind === 'alert-only' && prev?.taskId === task.id && prev.why === r.why;
    tlog[repeat ? 'debug' : 'warn'](
      { resolution: r, abandoned: expect.why, ...extra },
      describeResolution(r),
    );
  };
  let resolution: Resolution;
  if (task.kind === 'switchover') {
    const members = [...new Set([...(view.meta?.members ?? []), task.oldMaster, task.candidate])].filter(
      (n): n is string => n !== null,
    );
    // With the route cut, no write can reach the old master anyway: fence it again first, so it
    // cannot move while the decision is made (a rollback makes it writable again).
    if (task.oldMaster !== null && routeIsCut(task, view.route?.record ?? null)) {
      const f = await fenceOldMaster(ops, task.oldMaster, {
        timeoutMs: Math.max(1000, cfg.mysql.connectTimeoutMs),
        keepUsers: [cfg.mysql.user, cfg.mysql.replicationUser],
      });
      tlog.info(
        { fence: f.kind, ...(f.kind === 'unreachable' ? { error: f.error } : {}) },
        'old master fenced again before deciding',
      );
    }
    const { positions } = await readGtidPositions(
      deps.conns,
      deps.flavor,
      members,
      Math.max(1000, cfg.mysql.connectTimeoutMs * 2),
    );
    resolution = resolveAbandoned({
      task,
      master: view.master?.record ?? null,
      route: view.route?.record ?? null,
      invalidRecords: view.invalid.master || view.invalid.route,
      white: view.white !== null || view.invalid.white,
      oldMasterOnline: task.oldMaster !== null && member(view, task.oldMaster)?.online != null,
      positions,
    });
    note(resolution, { positions: summary(positions) });
  } else {
    resolution = resolveAbandoned({
      task,
      master: null,
      route: null,
      white: false,
      oldMasterOnline: false,
      positions: new Map(),
    });
    note(resolution, {});
  }

  const alertDetail = (extra: Record<string, unknown>): Record<string, unknown> => ({
    taskId: task.id,
    kind: task.kind,
    step: task.step,
    worker: task.worker,
    startedAt: task.startedAt,
    abandoned: expect.why.slice(0, 1000),
    resolvedBy: deps.workerId,
    ...extra,
  });
  const alert = (extra: Record<string, unknown>, now: number): MultiOp[] =>
    alertOps(
      paths,
      group,
      ABANDONED_ALERT,
      { kind: ABANDONED_ALERT, at: now, detail: alertDetail(extra) },
      alertOf(view, ABANDONED_ALERT)?.version ?? null,
    );

  if (resolution.kind === 'alert-only') {
    const r = resolution;
    await recordIncident(
      store,
      group,
      {
        alert: ABANDONED_ALERT,
        kind: ABANDONED_ALERT,
        detail: alertDetail({ resolution: 'none', why: r.why, retry: r.retry }),
        same: (prev) => prev.record.detail.taskId === task.id && prev.record.detail.why === r.why,
      },
      { view },
    );
    return { kind: 'alerted', retry: r.retry, why: r.why };
  }

  // A switchover with everything the resolution needs (resolveAbandoned checked these).
  const om = task.oldMaster!;
  const cand = task.candidate!;
  const epoch = task.epoch!;
  const masterVersion = view.master!.version;
  const settings = view.meta?.settings;
  const semi = promoteSemiSync(settings ?? { semiSync: 'off', semiSyncTimeoutMs: 1000 });
  const semiSync = semi.semiSync;
  const parallelApply = settings?.parallelApply;
  const pa = parallelApply !== undefined ? { parallelApply } : {};
  const replication = { user: cfg.mysql.replicationUser, password: cfg.mysql.replicationPassword };
  const others = (view.meta?.members ?? []).filter(
    (n) => n !== om && n !== cand && member(view, n)?.rejoin === null,
  );
  const history = (extra: Record<string, unknown>): Record<string, unknown> => ({
    resolution: extra.resolution,
    why: resolution.why,
    abandoned: expect.why.slice(0, 1000),
    task: { id: task.id, step: task.step, worker: task.worker, startedAt: task.startedAt },
    resolvedBy: deps.workerId,
    ...extra,
  });

  // The task journal (core/op): compare-and-set on the version read; LostLock once it moved.
  const journal = new Journal(store, group, lock, deps.workerId, vt);
  /** Takes the task over (CAS): from now on only this worker's writes to it succeed. */
  async function takeOver(step: AbandonedStep): Promise<void> {
    const prevAbandoned = (task.detail.abandoned ?? null) as Record<string, unknown> | null;
    try {
      await journal.save({
        step,
        detail: {
          ...task.detail,
          abandoned: {
            first: prevAbandoned?.first ?? { step: task.step, worker: task.worker },
            by: deps.workerId,
            at: Date.now(),
            why: resolution.why.slice(0, 2000),
          },
        },
      });
    } catch (err) {
      if (err instanceof LostLock) throw new Stale(err.message);
      throw err;
    }
  }

  const timer = new StepTimer();
  try {
    switch (resolution.kind) {
      case 'hand-to-failover': {
        // The failover resumes from 'fence' (route already cut at this epoch: kept; the old
        // master fenced once more in case it answers) and chooses the replica that received most.
        const now = Date.now();
        const rec: TaskRecord = {
          v: 1,
          id: `${group}-e${epoch}-${randomBytes(3).toString('hex')}`,
          kind: 'failover',
          step: 'fence',
          oldMaster: om,
          candidate: null,
          startedAt: now,
          worker: deps.workerId,
          epoch,
          detail: {
            how: 'unreachable',
            detectedAt: now,
            steps: [],
            excluded: [],
            attempts: 0,
            handedOverFrom: { id: task.id, kind: task.kind, step: task.step, worker: task.worker },
          },
        };
        if (!lock.isHeld()) throw new Stale('lock lost');
        await zk.mkdirp(paths.historyDir(group));
        await zk
          .multi([
            {
              op: 'set',
              path: paths.task(group),
              data: encodeRecord(taskSchema, rec, paths.task(group)),
              version: journal.version,
            },
            ...historyOps(paths, group, {
              kind: ABANDONED_HISTORY,
              from: om,
              to: null,
              epoch,
              startedAt: task.startedAt,
              endedAt: now,
              steps: [],
              detail: history({ resolution: 'handed-to-failover', failoverTask: rec.id }),
            }),
            ...alert({ resolution: 'handed-to-failover', why: resolution.why, epoch }, now),
          ])
          .catch((err: unknown) => {
            if (isZkmhaError(err, 'ZK_BAD_VERSION') || isZkmhaError(err, 'ZK_NO_NODE'))
              throw new Stale(`task/${group} changed under us`);
            throw err;
          });
        return { kind: 'resolved', resolution: 'handed-to-failover', master: null, epoch };
      }

      case 'roll-back': {
        await takeOver('abandoned-rollback');
        const now = Date.now();
        await rollBackSwitchover(
          zk,
          paths,
          ops,
          {
            group,
            oldMaster: om,
            candidate: cand,
            others,
            epoch,
            masterVersion,
            routeVersion: view.route?.version ?? null,
            read: (view.route?.record.read ?? []).filter((n) => n !== om),
            semiSync,
            replication,
            // The candidate's state is whatever the dead process left: re-point it if it answers.
            candidateTouched: resolution.candidateReachable,
            // The others and the old master may replicate from the candidate already.
            repointed: true,
            taskVersion: journal.version,
            startedAt: task.startedAt,
            reason: 'switchover rolled back (abandoned)',
            history: {
              kind: ABANDONED_HISTORY,
              detail: history({ resolution: 'rolled-back', candidate: cand }),
            },
            extraOps: alert({ resolution: 'rolled-back', why: resolution.why, epoch, master: om }, now),
            held: () => lock.isHeld(),
          },
          timer,
        );
        return { kind: 'resolved', resolution: 'rolled-back', master: om, epoch };
      }

      case 'roll-forward': {
        await takeOver('abandoned-rollforward');
        const { host, port } = parseNode(cand);
        // Every other node replicates from the candidate (which sets it read-only first) …
        const [res, old] = await Promise.all([
          timer.run('re-point replicas', () =>
            repointReplicas(ops, others, cand, { replication, semiSync, timeoutMs: 5000, ...pa }),
          ),
          resolution.oldMasterReachable
            ? timer
                .run('re-point old master', () =>
                  deps.conns.run(om, (c) =>
                    // A former master: its own binlog is its position, hence current_pos.
                    deps.flavor.replicateFrom(c, {
                      host,
                      port,
                      ...replication,
                      semiSync,
                      gtidMode: 'current_pos',
                      tls: deps.conns.tls,
                      ...pa,
                    }),
                  ),
                )
                .then(
                  () => true,
                  (err: unknown) => {
                    tlog.warn(
                      { err: errorMessage(err) },
                      'old master not re-pointed; it gets a rejoin/ record',
                    );
                    return false;
                  },
                )
            : Promise.resolve(false),
        ]);
        // … and is read-only before the candidate takes writes (unreachable ones: fenced by the route).
        await timer.run('check read-only', async () => {
          const { positions } = await readGtidPositions(
            deps.conns,
            deps.flavor,
            [om, ...others],
            Math.max(1000, cfg.mysql.connectTimeoutMs * 2),
          );
          const writable = [...positions].filter(([, p]) => p.reachable && !p.readOnly).map(([n]) => n);
          if (writable.length > 0)
            throw new ZkmhaError(
              'CONFLICT',
              `not making ${cand} writable: ${writable.join(', ')} writable too`,
            );
        });
        if (!lock.isHeld()) throw new Stale('lock lost');
        const st = await timer.run('promote', () => promoteCandidate(ops, cand, { ...semi, ...pa }));
        const drained = new Set(
          view.members.filter((m) => m.slaveDown?.record.drained === true).map((m) => m.node),
        );
        const read = others.filter((n) => res.get(n)?.ok === true && !drained.has(n));
        const notRepointed = others.filter((n) => res.get(n)?.ok !== true);
        const now = Date.now();
        if (!lock.isHeld()) throw new Stale('lock lost');
        const oldRejoin = member(view, om)?.rejoin ?? null;
        await timer.run('commit', () =>
          commitMasterChange(zk, paths, {
            group,
            newMaster: cand,
            epoch,
            reason: 'switchover',
            masterVersion,
            route: { read, version: view.route?.version ?? null },
            history: {
              kind: ABANDONED_HISTORY,
              from: om,
              to: cand,
              startedAt: task.startedAt,
              endedAt: now,
              steps: timer.steps.map((s) => ({ ...s })) satisfies HistoryRecord['steps'],
              detail: history({
                resolution: 'rolled-forward',
                target: resolution.target,
                gtidAtPromotion: st.gtidBinlogPos,
                oldMasterRepointed: old,
                notRepointed,
              }),
            },
            // An old master that could not be re-pointed reconciles when it is back (design §4).
            ...(old
              ? {}
              : {
                  rejoin: {
                    node: om,
                    record: {
                      group,
                      newMaster: cand,
                      epoch,
                      promotedAt: now,
                      gtidAtPromotion: st.gtidBinlogPos,
                    },
                    version: oldRejoin?.version ?? null,
                  },
                }),
            taskVersion: journal.version,
            extraOps: alert({ resolution: 'rolled-forward', why: resolution.why, epoch, master: cand }, now),
          }),
        );
        // The old master joins the read pool through the workers' read-pool upkeep once healthy.
        return { kind: 'resolved', resolution: 'rolled-forward', master: cand, epoch };
      }
    }
  } catch (err) {
    if (err instanceof Stale || !lock.isHeld()) {
      tlog.warn({ why: errorMessage(err) }, 'stopping: the task changed or the lock was lost');
      return { kind: 'stale' };
    }
    const message = errorMessage(err);
    tlog.error({ err: message, steps: timer.steps }, 'resolving the abandoned operation failed; retried');
    try {
      // Every failure is written (its error may differ from the last one's).
      await recordIncident(store, group, {
        alert: ABANDONED_ALERT,
        kind: ABANDONED_ALERT,
        detail: alertDetail({
          resolution: 'failed',
          attempted: resolution.kind,
          why: resolution.why,
          error: message.slice(0, 2000),
        }),
        same: () => false,
      });
    } catch (e) {
      tlog.warn({ err: errorMessage(e) }, 'could not record the failure');
    }
    return { kind: 'failed', error: message };
  }
}

function summary(positions: ReadonlyMap<string, NodePosition>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [n, p] of positions)
    out[n] = p.reachable ? `${p.readOnly ? 'ro' : 'RW'} ${p.gtidBinlogPos}` : `unreachable: ${p.error}`;
  return out;
}
