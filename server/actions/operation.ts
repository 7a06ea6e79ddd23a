import type { Flavor } from '../../core/mysql/flavor';
import { errorMessage } from '../../core/errors';
import type { TaskRecord } from '../../core/records';
import type { Versioned } from '../../core/view';
import { readLockHolder } from '../../core/zk/lock';
import { abandonment, taskKey } from '../abandoned';
import type { Verdict } from '../detect';
import { resolveAbandonedTask } from '../resolve';
import { BUSY, type Action, type WorkerContext } from './context';

/** A switchover or add is open: wait for it, or resolve it once its process is gone. */
export const operation: Action<Extract<Verdict, { kind: 'operation-in-progress' }>> = (w, g, view) =>
  operationInProgress(w, g.name, view.task!, w.flavor(view), (at) => w.schedule(g, at));

/**
 * A switchover or add task is open: nothing to do while someone holds lock/<group>; once nobody
 * has for the grace period, take the lock and resolve it. `schedule` asks for another look.
 */
export async function operationInProgress(
  w: WorkerContext,
  group: string,
  task: Versioned<TaskRecord>,
  flavor: Flavor,
  schedule: (at: number) => void,
): Promise<void> {
  const { zk, paths } = w.o;
  let holder;
  try {
    holder = await readLockHolder(zk, paths, group);
  } catch (err) {
    w.log.warn({ group, err: errorMessage(err) }, 'could not read lock holder; looking again later');
    return;
  }
  const graceMs = w.o.abandonGraceMs ?? zk.sessionTimeoutMs;
  const prev = w.orphans.get(group) ?? null;
  const a = abandonment({ task, holder, mark: prev, now: Date.now(), graceMs, selfId: w.id });
  switch (a.kind) {
    case 'not-applicable':
    case 'owner-active':
      w.orphans.delete(group);
      return;
    case 'grace':
      if (prev?.key !== a.mark.key)
        w.log.info(
          {
            group,
            task: task.record.id,
            kind: task.record.kind,
            step: task.record.step,
            by: task.record.worker,
            graceMs,
          },
          'open task without a lock holder: its process may be gone; looking again after the grace period',
        );
      w.orphans.set(group, a.mark);
      schedule(a.until);
      return;
    case 'abandoned':
      break;
  }
  // Reported already and nothing else to do (an add): until the task changes.
  if (w.settled.get(group) === taskKey(task)) return;
  const outcome = await w.withLock(group, (lock) =>
    resolveAbandonedTask(
      {
        zk,
        paths,
        cfg: w.o.cfg,
        log: w.log,
        conns: w.conns,
        flavor,
        workerId: w.id,
      },
      group,
      lock,
      { key: taskKey(task), why: a.why },
    ),
  );
  const retryAt = Date.now() + w.o.server.reconcileIntervalMs;
  if (outcome === BUSY) return schedule(Date.now());
  switch (outcome.kind) {
    case 'resolved':
      w.orphans.delete(group);
      w.log.warn({ group, ...outcome }, `abandoned ${task.record.kind} resolved: ${outcome.resolution}`);
      // A failover handed over is resumed on the next evaluation.
      return schedule(Date.now());
    case 'stale':
      return schedule(Date.now());
    case 'alerted':
      if (outcome.retry) schedule(retryAt);
      else w.settled.set(group, taskKey(task));
      return;
    case 'failed':
      return schedule(retryAt);
  }
}
