import type { GaleraRoute } from '../core/galera-route';
import { alertSchema, encodeRecord } from '../core/records';
import { isZkmhaError } from '../core/errors';
import { galeraRouteOf, galeraRouteOps } from '../core/ops/galera';
import { alertOf, readGroupView, type GroupView } from '../core/view';
import type { GroupState, WorkerContext } from './actions/context';

/**
 * The server worker's upkeep of a Galera group (issue 13): the route follows decideGaleraRoute
 * (core/ops/galera.ts builds the commit). Only the lock holder writes, after a fresh read.
 * Maintenance (white/) freezes the route. There is no failover to run: Galera itself keeps the
 * other members consistent; only where writes go changes.
 */
/**
 * watch_down/<group>__galera-non-primary while the group has no writer (no routable node, or doubt
 * about the Primary Component); removed once it has one. Create-if-absent and delete-by-version
 * need no lock.
 */
async function nonPrimaryAlert(w: WorkerContext, view: GroupView, d: GaleraRoute): Promise<void> {
  const { zk, paths } = w.o;
  const prev = alertOf(view, 'galera-non-primary');
  const path = paths.watchDown(view.group, 'galera-non-primary');
  if (d.write !== null) {
    if (prev !== undefined) {
      await zk.deleteIfExists(path, prev.version).catch(() => undefined);
      w.log.info(
        { group: view.group, write: d.write },
        'galera writer back: galera-non-primary alert resolved',
      );
    }
    return;
  }
  if (prev !== undefined) return;
  const detail = {
    reason: d.reason,
    excluded: Object.fromEntries(d.excluded),
    ...(d.conflict !== undefined ? { conflict: d.conflict } : {}),
  };
  try {
    await zk.mkdirp(paths.dir('watch_down'));
    await zk.create(
      path,
      encodeRecord(alertSchema, { v: 1, kind: 'galera-non-primary', at: Date.now(), detail }, path),
    );
    w.log.error({ group: view.group, ...detail }, 'galera group has no writer: galera-non-primary alert');
  } catch (err) {
    if (!isZkmhaError(err, 'ZK_NODE_EXISTS')) throw err;
  }
}

export async function galeraUpkeep(w: WorkerContext, g: GroupState, view: GroupView): Promise<void> {
  if (view.white !== null) return;
  const d = galeraRouteOf(view);
  if (d === null) return;
  await nonPrimaryAlert(w, view, d);
  if (galeraRouteOps(view, d, w.o.paths, Date.now()) === null) return;
  const { zk, paths } = w.o;
  await w.withLock(g.name, async (lock) => {
    const v2 = await readGroupView(zk, paths, g.name);
    if (v2.white !== null || v2.meta?.flavor !== 'galera') return;
    const d2 = galeraRouteOf(v2);
    const now = Date.now();
    const plan = d2 === null ? null : galeraRouteOps(v2, d2, paths, now);
    if (d2 === null || plan === null || !lock.isHeld()) return;
    await zk.mkdirp(paths.historyDir(g.name));
    await zk.multi(plan.ops);
    const entry = {
      group: g.name,
      write: d2.write,
      read: d2.read,
      epoch: plan.epoch,
      reason: d2.reason,
      excluded: Object.fromEntries(d2.excluded),
      ...(d2.conflict !== undefined ? { conflict: d2.conflict } : {}),
    };
    if (plan.moved) w.log.warn(entry, 'galera writer moved');
    else w.log.info(entry, 'galera read pool updated');
  });
}
