import { encodeRecord, haproxySchema, slaveDownSchema, type HaproxyRecord } from '../../core/records';
import { semiSyncHealth } from '../../core/semisync';
import { alertOf, member, readGroupView, type GroupView } from '../../core/view';
import type { MultiOp } from '../../core/zk/client';
import { detect, type Verdict } from '../detect';
import { probeReplica } from '../probe';
import { planReadPool, type ReplicaProbe } from '../readpool';
import type { Action, GroupState, WorkerContext } from './context';
import { banUpkeep } from './ban';
import { incident } from './incident';
import { clearInvalidAlert } from './repair';
import { repointUpkeep } from './repoint';

/**
 * A healthy master: resolve the heartbeat alert that is over, keep connections to the replicas
 * warm, say so when the route does not serve the master, and keep the read pool (planReadPool)
 * — looking again when a read-only master's grace period ends.
 */
export const masterHealthy: Action<Extract<Verdict, { kind: 'master-healthy' }>> = async (w, g, view) => {
  // A read-only master within its grace period: look again when the grace ends.
  if (g.readOnly !== null) w.schedule(g, g.readOnly.since + w.o.server.readOnlyGraceMs);
  await healthy(w, g, view);
};

/** The healthy master's upkeep (also after a read-only master was looked at). */
export async function healthy(w: WorkerContext, g: GroupState, view: GroupView): Promise<void> {
  const { zk, paths } = w.o;
  const master = view.master!.record;
  const hb = alertOf(view, undefined);
  if (hb !== undefined && hb.record.kind === 'heartbeat-lost-mysql-alive') {
    // The condition is over (the heartbeat is back, or another node is master now).
    await zk.deleteIfExists(paths.watchDown(view.group), hb.version).catch(() => undefined);
    w.log.info({ group: view.group }, 'heartbeat back: heartbeat-lost-mysql-alive alert resolved');
  }
  await semiSyncAlert(w, view);
  await clearInvalidAlert(w, view);
  await banUpkeep(w, g, view);
  repointUpkeep(w, g, view);
  // Keep admin connections to live replicas open: a failover must not pay for handshakes.
  for (const m of view.members) if (m.node !== master.node && m.online !== null) w.conns.warm(m.node);
  const route = view.route?.record;
  if (route === undefined || route.epoch !== master.epoch || route.write !== master.node) {
    // No operation is open (detect saw no task), yet the route does not serve the master: say so,
    // do not guess (an operator's `mha setmaster --reroute` or switchover settles it).
    await incident(w, view, 'route-mismatch', null, {
      route: route ?? null,
      note: `haproxy/${view.group} (epoch ${route?.epoch ?? '-'}, write ${route?.write ?? 'null'}) does not match master/${view.group} (${master.node}, epoch ${master.epoch}); read pool left alone`,
    });
    return;
  }
  const now = Date.now();
  const probes = new Map<string, ReplicaProbe>();
  for (const [n, p] of g.probes) {
    // A probe is evidence for one reconcile interval; then the replica is asked again.
    if (now - p.at > w.o.server.reconcileIntervalMs) g.probes.delete(n);
    else {
      probes.set(n, p.probe);
      // Asked again once the evidence is stale, without waiting for the periodic sweep.
      w.schedule(g, p.at + w.o.server.reconcileIntervalMs + 1);
    }
  }
  const returnAfterMs = w.o.server.readReturnAfterMs;
  const plan = planReadPool(view, { now, probes, healthySince: g.healthySince, returnAfterMs });
  if (plan === null) return;
  for (const [n, h] of plan.health) {
    if (h.healthy) {
      if (!g.healthySince.has(n)) g.healthySince.set(n, now);
    } else if (h.probe !== 'needed') g.healthySince.delete(n);
  }
  for (const n of plan.needsProbe) launchProbe(w, g, view, n);
  if (plan.recheckAt !== null) w.schedule(g, plan.recheckAt);
  if (!plan.changed) return;

  await w.withLock(g.name, async (lock) => {
    const v2 = await readGroupView(zk, paths, g.name);
    if (detect(v2, { now: Date.now() }).kind !== 'master-healthy') return;
    const p2 = planReadPool(v2, { now: Date.now(), probes, healthySince: g.healthySince, returnAfterMs });
    if (p2 === null || !p2.changed || !lock.isHeld()) return;
    const r = v2.route!;
    const ops: MultiOp[] = [];
    const sameRead =
      p2.read.length === r.record.read.length && p2.read.every((n) => r.record.read.includes(n));
    if (!sameRead) {
      const rec: HaproxyRecord = { ...r.record, read: [...p2.read] };
      ops.push({
        op: 'set',
        path: paths.haproxy(g.name),
        data: encodeRecord(haproxySchema, rec, paths.haproxy(g.name)),
        version: r.version,
      });
    }
    const at = Date.now();
    for (const x of [...p2.remove, ...p2.mark]) {
      if (v2.slaveDown.has(x.node)) continue;
      const path = paths.slaveDown(g.name, x.node);
      ops.push({
        op: 'create',
        path,
        data: encodeRecord(slaveDownSchema, { v: 1, since: at, reason: x.reason }, path),
      });
    }
    for (const n of p2.add) {
      const sd = v2.slaveDown.get(n);
      if (sd !== undefined && sd.record.drained !== true)
        ops.push({ op: 'delete', path: paths.slaveDown(g.name, n), version: sd.version });
    }
    if (ops.length === 0) return;
    await zk.mkdirp(paths.slaveDownDir(g.name));
    await zk.multi(ops);
    w.log.warn(
      { group: g.name, read: p2.read, removed: p2.remove, marked: p2.mark, returned: p2.add },
      'read pool updated',
    );
  });
}

/**
 * watch_down/<group>__semi-sync-off while the master does not acknowledge as its group's semi-sync
 * policy asks (fell back to async, or its master side is off); cleared once it does again. Only
 * raised from a healthy master's heartbeat: during an operation the figures lie.
 */
async function semiSyncAlert(w: WorkerContext, view: GroupView): Promise<void> {
  const master = view.master!.record;
  const h = semiSyncHealth(view.meta!.settings.semiSync, member(view, master.node)?.online ?? null);
  if (h.state === 'at-risk') {
    await incident(w, view, 'semi-sync-off', null, {
      node: master.node,
      policy: h.policy,
      active: h.active,
      clients: h.clients,
      note: h.note,
    });
    return;
  }
  const prev = alertOf(view, 'semi-sync-off');
  if (prev === undefined || h.state === 'unknown') return;
  await w.o.zk
    .deleteIfExists(w.o.paths.watchDown(view.group, 'semi-sync-off'), prev.version)
    .catch(() => undefined);
  w.log.info({ group: view.group, semiSync: h }, 'semi-sync back: semi-sync-off alert resolved');
}

function launchProbe(w: WorkerContext, g: GroupState, view: GroupView, node: string): void {
  if (g.probing.has(node) || g.probes.has(node)) return;
  g.probing.add(node);
  void probeReplica(w.conns, w.flavor(view), node).then((probe) => {
    g.probing.delete(node);
    g.probes.set(node, { at: Date.now(), probe });
    w.kick(g);
  });
}
