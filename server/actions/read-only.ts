import { recordIncident } from '../../core/op/journal';
import { readGtidPositions } from '../../core/ops/positions';
import type { AlertKind } from '../../core/records';
import { withTimeout } from '../../core/timeout';
import { readGroupView, type GroupView } from '../../core/view';
import { detect, type Verdict } from '../detect';
import { probeReadOnlyMaster } from '../probe';
import { decideReadOnlyMaster, type OtherNode, type ReadOnlyAction } from '../readonly';
import { BUSY, type Action, type GroupState, type WorkerContext } from './context';
import { healthy } from './healthy';

/** Alert and history kind of a master that stays read-only (server/readonly.ts). */
const READ_ONLY_ALERT = 'master-read-only' satisfies AlertKind;

/** The master stays read-only: un-fence it when safe, else alert; then the healthy upkeep. */
export const masterReadOnlyAction: Action<Extract<Verdict, { kind: 'master-read-only' }>> = async (
  w,
  g,
  view,
  verdict,
) => {
  await masterReadOnly(w, g, view, verdict);
  await healthy(w, g, view);
};

/**
 * detect said 'master-read-only': white-listed → alert only; otherwise, under lock/<group>, read
 * the view again, probe the master and every other member directly, and un-fence it when
 * decideReadOnlyMaster says it is safe — recording a history event and the alert either way.
 */
async function masterReadOnly(
  w: WorkerContext,
  g: GroupState,
  view: GroupView,
  v: Extract<Verdict, { kind: 'master-read-only' }>,
): Promise<void> {
  const { zk, paths } = w.o;
  const readOnlyMs = Date.now() - v.since;
  if (v.white) {
    await readOnlyRecord(
      w,
      view,
      v,
      { kind: 'alert-only', why: `white/${g.name} is set (maintenance)` },
      {
        readOnlyMs,
        history: false,
      },
    );
    return;
  }
  if (Date.now() < g.readOnlyRetryAt) {
    w.schedule(g, g.readOnlyRetryAt);
    return;
  }
  const flavor = w.flavor(view);
  const timeoutMs = Math.max(1000, 2 * w.o.cfg.mysql.connectTimeoutMs);
  const outcome = await w.withLock(g.name, async (lock) => {
    const t0 = performance.now();
    const v2 = await readGroupView(zk, paths, g.name);
    const again = detect(v2, {
      now: Date.now(),
      masterReadOnlySince: v.since,
      readOnlyGraceMs: w.o.server.readOnlyGraceMs,
    });
    if (again.kind !== 'master-read-only' || again.master !== v.master || again.epoch !== v.epoch)
      return { kind: 'none', why: `looked again under the lock: ${again.kind}` } as const;
    const others = v2.members.map((m) => m.node).filter((n) => n !== v.master);
    const [probe, { positions }] = await Promise.all([
      probeReadOnlyMaster(w.conns, flavor, v.master, timeoutMs),
      readGtidPositions(w.conns, flavor, others, timeoutMs),
    ]);
    const otherNodes = new Map<string, OtherNode>(
      [...positions].map(([n, p]) => [
        n,
        p.reachable ? { reachable: true, readOnly: p.readOnly } : { reachable: false },
      ]),
    );
    const action = decideReadOnlyMaster({
      view: v2,
      master: v.master,
      epoch: v.epoch,
      probe,
      others: otherNodes,
    });
    const probeMs = Math.round((performance.now() - t0) * 10) / 10;
    const steps = [{ name: 'probe', ms: probeMs, ok: probe.kind === 'answered' }];
    if (action.kind === 'none') return action;
    if (action.kind === 'unfence') {
      if (!lock.isHeld()) return { kind: 'none', why: 'lost the lock before un-fencing' } as const;
      const t1 = performance.now();
      await withTimeout(
        w.conns.run(v.master, (c) => flavor.setReadOnly(c, false)),
        timeoutMs,
        `set read_only=OFF on ${v.master}`,
        'MYSQL_TIMEOUT',
      );
      steps.push({ name: 'unfence', ms: Math.round((performance.now() - t1) * 10) / 10, ok: true });
    }
    await readOnlyRecord(w, v2, v, action, { readOnlyMs, history: true, steps });
    return action;
  });
  if (outcome === BUSY) return w.kick(g);
  if (outcome.kind === 'unfence') {
    g.readOnlyRetryAt = 0;
    w.log.warn(
      { group: g.name, master: v.master, epoch: v.epoch, readOnlyMs },
      'master was read-only with no operation open: made writable again (read_only=OFF)',
    );
    return;
  }
  // Nothing changed: not again before a reconcile interval (the heartbeat tells of any change).
  g.readOnlyRetryAt = Date.now() + w.o.server.reconcileIntervalMs;
  w.schedule(g, g.readOnlyRetryAt);
  w.log[outcome.kind === 'none' ? 'info' : 'warn'](
    { group: g.name, master: v.master, epoch: v.epoch, action: outcome.kind, why: outcome.why },
    outcome.kind === 'none'
      ? 'read-only master: nothing to do'
      : 'read-only master: not safe to un-fence, alert only',
  );
}

/**
 * The `watch_down/<group>__master-read-only` alert (+ a history event unless `history: false`).
 * An un-fence is recorded every time; an alert-only outcome once per master, epoch and reason.
 */
async function readOnlyRecord(
  w: WorkerContext,
  view: GroupView,
  v: Extract<Verdict, { kind: 'master-read-only' }>,
  action: Exclude<ReadOnlyAction, { kind: 'none' }>,
  o: {
    readonly readOnlyMs: number;
    readonly history: boolean;
    readonly steps?: ReadonlyArray<{ name: string; ms: number; ok: boolean }>;
  },
): Promise<void> {
  const why = action.kind === 'alert-only' ? action.why : null;
  const detail: Record<string, unknown> = {
    epoch: v.epoch,
    master: v.master,
    action: action.kind === 'unfence' ? 'unfenced' : 'none',
    ...(why !== null ? { why } : {}),
    readOnlySince: v.since,
    readOnlyMs: o.readOnlyMs,
    note:
      action.kind === 'unfence'
        ? `master ${v.master} was read-only with no operation open (a self-fence that outlived a ZooKeeper outage, or a fence by hand); master/ still names it at epoch ${v.epoch}, nothing else is writable: read_only=OFF`
        : `master ${v.master} is read-only with no operation open: the group takes no writes; not changed automatically (${why})`,
  };
  const written = await recordIncident(
    w.store,
    view.group,
    {
      alert: READ_ONLY_ALERT,
      kind: READ_ONLY_ALERT,
      detail,
      ...(o.history
        ? {
            history: (now: number) => ({
              kind: READ_ONLY_ALERT,
              from: v.master,
              to: v.master,
              epoch: v.epoch,
              startedAt: v.since,
              endedAt: now,
              steps: [...(o.steps ?? [])],
              detail,
            }),
          }
        : {}),
      // An un-fence is recorded every time; "alert only" once per master, epoch and reason.
      same: (prev) =>
        action.kind === 'alert-only' &&
        prev.record.detail.epoch === v.epoch &&
        prev.record.detail.master === v.master &&
        prev.record.detail.why === why,
    },
    { view },
  );
  if (written === 'written')
    w.log.warn({ group: view.group, alert: READ_ONLY_ALERT, detail }, 'alert raised');
}
