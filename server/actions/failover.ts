import { readGroupView, type GroupView } from '../../core/view';
import { detect, type Verdict } from '../detect';
import { createFailoverTask, runFailover } from '../failover';
import { BUSY, type Action, type Evaluation, type GroupState, type WorkerContext } from './context';

type V<K extends Verdict['kind']> = Extract<Verdict, { kind: K }>;

/** The master is dead (confirmed): create the failover task and run it, under the lock. */
export const masterDead: Action<V<'master-dead'>> = (w, g, view, _v, ev) => failOver(w, g, { ...ev, view });

/** A failover task is open: resume it (not before the retry time after a failed attempt). */
export const resumeFailover: Action<V<'resume-failover'>> = async (w, g, view, _v, ev) => {
  if (Date.now() < g.retryFailoverAt) {
    w.schedule(g, g.retryFailoverAt);
    return;
  }
  await failOver(w, g, { ...ev, view });
};

async function failOver(
  w: WorkerContext,
  g: GroupState,
  o: Evaluation & { readonly view: GroupView },
): Promise<void> {
  const { zk, paths } = w.o;
  const tLock = performance.now();
  const outcome = await w.withLock(g.name, async (lock) => {
    const lockMs = performance.now() - tLock;
    // Under the lock: look again. Another worker may have done it, or the master came back.
    const view = (await unchanged(w, o.view)) ? o.view : await readGroupView(zk, paths, g.name);
    const viewMs = performance.now() - tLock - lockMs;
    const v = detect(view, { now: Date.now(), ...(o.probe ? { probe: o.probe } : {}) });
    if (v.kind === 'master-dead') {
      const { task, created } = await createFailoverTask(
        w.failoverDeps(view),
        view,
        v.how,
        o.kickedAt,
        o.confirmMs,
      );
      const ms = (x: number): number => Math.round(x * 10) / 10;
      w.log.warn(
        {
          group: g.name,
          oldMaster: v.oldMaster,
          how: v.how,
          task: task.record.id,
          timing: {
            sinceEventMs: Date.now() - o.kickedAt,
            decideMs: o.confirmMs,
            lockMs: ms(lockMs),
            viewMs: ms(viewMs),
            taskMs: ms(performance.now() - tLock - lockMs - viewMs),
          },
        },
        'master dead: failing over',
      );
      w.o.metrics?.detected(g.name, (Date.now() - o.kickedAt) / 1000);
      return runFailover(
        w.failoverDeps(view),
        g.name,
        task,
        lock,
        created ? { resumed: false, view } : { resumed: true },
      );
    }
    if (v.kind === 'resume-failover') {
      return runFailover(w.failoverDeps(view), g.name, view.task!, lock, { resumed: true });
    }
    w.log.info({ group: g.name, verdict: v.kind }, 'nothing to fail over after taking the lock');
    return null;
  });
  if (outcome === BUSY) {
    w.kick(g);
    return;
  }
  if (outcome === null) return;
  w.o.metrics?.failover(g.name, outcome, (performance.now() - tLock) / 1000);
  switch (outcome.kind) {
    case 'done':
      g.retryFailoverAt = 0;
      w.log.warn(
        { group: g.name, newMaster: outcome.newMaster, epoch: outcome.epoch, steps: outcome.steps },
        'failover done',
      );
      return;
    case 'failed':
    case 'no-candidate':
    case 'blocked':
      g.retryFailoverAt = Date.now() + w.o.server.reconcileIntervalMs;
      w.schedule(g, g.retryFailoverAt);
      return;
    case 'lost':
      return;
  }
}

/**
 * Whether what a failover decision rests on is still as in `view`: no task, master/ and
 * haproxy/ at the same versions, no white flag, the old master's heartbeat still gone, its
 * agent unchanged. Five cheap reads instead of a whole snapshot on the critical path.
 */
async function unchanged(w: WorkerContext, view: GroupView): Promise<boolean> {
  const { zk, paths } = w.o;
  const old = view.master?.record.node;
  if (old === undefined || view.task !== null) return false;
  const [task, master, route, white, online] = await Promise.all([
    zk.exists(paths.task(view.group)),
    zk.exists(paths.master(view.group)),
    zk.exists(paths.haproxy(view.group)),
    zk.exists(paths.white(view.group)),
    zk.exists(paths.online(old)),
  ]);
  return (
    task === null &&
    white === null &&
    online === null &&
    master?.version === view.master?.version &&
    (route?.version ?? null) === (view.route?.version ?? null)
  );
}
