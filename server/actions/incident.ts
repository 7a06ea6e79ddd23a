import { recordIncident } from '../../core/op/journal';
import type { AlertKind } from '../../core/records';
import type { GroupView } from '../../core/view';
import type { Verdict } from '../detect';
import type { Action, WorkerContext } from './context';

/**
 * An alert plus (optionally) a history event, written once per master epoch and old master:
 * no lock needed — both writes are compare-and-set, so two workers cannot duplicate them.
 */
export async function incident(
  w: WorkerContext,
  view: GroupView,
  alertKind: AlertKind | undefined,
  historyKind: string | null,
  detail: Record<string, unknown>,
  recordKind?: AlertKind,
): Promise<void> {
  const master = view.master!.record;
  const kind = recordKind ?? alertKind!;
  const written = await recordIncident(
    w.store,
    view.group,
    {
      alert: alertKind,
      kind,
      detail: { ...detail, epoch: master.epoch, oldMaster: master.node },
      ...(historyKind !== null
        ? {
            history: (now: number) => ({
              kind: historyKind,
              from: master.node,
              to: null,
              epoch: master.epoch,
              startedAt: now,
              endedAt: now,
              steps: [],
              detail,
            }),
          }
        : {}),
      same: (prev) =>
        prev.record.detail.epoch === master.epoch && prev.record.detail.oldMaster === master.node,
    },
    { view },
  );
  if (written === 'written') w.log.warn({ group: view.group, alert: kind, detail }, 'alert raised');
}

type V<K extends Verdict['kind']> = Extract<Verdict, { kind: K }>;

/** white/<group> is set: no automatic failover, said once per epoch (+ history). */
export const whiteListed: Action<V<'white-listed'>> = async (w, g, view, verdict) => {
  await incident(w, view, 'failover-suppressed', 'failover-suppressed', {
    reason: 'white',
    white: view.white ?? 'invalid white record',
    note: `master ${verdict.oldMaster} lost its heartbeat while the group is in maintenance (white/${g.name}): no automatic failover`,
  });
};

/** The heartbeat is gone but mysqld answers: the bare watch_down/<group> alert, no failover. */
export const heartbeatLost: Action<V<'heartbeat-lost-mysql-alive'>> = async (w, _g, view, verdict) => {
  await incident(
    w,
    view,
    undefined,
    null,
    {
      node: verdict.oldMaster,
      probe: verdict.probe,
      note: `online/${verdict.oldMaster} is gone but mysqld answers: no failover; still watching`,
    },
    'heartbeat-lost-mysql-alive',
  );
};

/** Dead within the anti-flap period: alert (+ history), and look again when the period ends. */
export const antiflapBlocked: Action<V<'blocked-by-antiflap'>> = async (w, g, view, verdict) => {
  await incident(w, view, 'antiflap-blocked', 'failover-blocked', {
    reason: 'antiflap',
    how: verdict.how,
    lastFailoverEpoch: verdict.lastFailoverEpoch,
    lastFailoverAt: verdict.lastFailoverAt,
    blockedUntil: verdict.until,
    note: `master ${verdict.oldMaster} is dead, but the group failed over less than recoveryBlockSeconds ago; acknowledge with 'mha alerts --clear ${g.name}' (deletes watch_down/${g.name}__failover) to let it fail over now`,
  });
  w.schedule(g, verdict.until);
};

/** Dead, but no replica may be promoted: alert (+ history). */
export const noCandidate: Action<V<'no-candidate'>> = async (w, _g, view, verdict) => {
  await incident(w, view, 'no-candidate', 'failover-blocked', {
    reason: 'no-candidate',
    why: verdict.why,
    how: verdict.how,
  });
};
