import { decideGaleraRoute, type GaleraRoute } from '../core/galera-route';
import {
  alertSchema,
  encodeRecord,
  haproxySchema,
  historySchema,
  masterSchema,
  type HaproxyRecord,
  type MasterRecord,
  type MetaHost,
  type OnlineRecord,
} from '../core/records';
import { isZkmhaError } from '../core/errors';
import { alertOf, readGroupView, type GroupView } from '../core/view';
import type { MultiOp } from '../core/zk/client';
import type { ZkPaths } from '../core/zk/paths';
import type { GroupState, WorkerContext } from './actions/context';

/**
 * The server worker's upkeep of a Galera group (issue 13): the route follows decideGaleraRoute.
 * A writer move is committed like a failover's — master/ and haproxy/ with the epoch + 1 and a
 * history event, in one ZooKeeper multi with compare-and-set on both — so routers and agents see
 * the same epoch rule; a read-pool change keeps the epoch. Only the lock holder writes, after a
 * fresh read. Maintenance (white/) freezes the route. There is no failover to run: Galera itself
 * keeps the other members consistent; only where writes go changes.
 */
export function galeraRouteOf(view: GroupView): GaleraRoute | null {
  if (view.meta === null || view.invalid.meta || view.invalid.master || view.invalid.route) return null;
  const online = new Map<string, OnlineRecord>();
  const hosts = new Map<string, Pick<MetaHost, 'priority' | 'dc'>>();
  for (const m of view.members) {
    if (m.online !== null) online.set(m.node, m.online);
    if (m.host !== null) hosts.set(m.node, m.host);
  }
  const drained = new Set([...view.slaveDown].filter(([, sd]) => sd.record.drained === true).map(([n]) => n));
  return decideGaleraRoute({
    members: view.meta.members,
    online,
    hosts,
    currentWriter: view.route?.record.write ?? null,
    drained,
  });
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n) => b.includes(n));
}

/** The multi that brings master/, haproxy/ and history/ to `d`, or null when nothing changes. */
export function galeraRouteOps(
  view: GroupView,
  d: GaleraRoute,
  paths: ZkPaths,
  now: number,
): { readonly ops: MultiOp[]; readonly epoch: number; readonly moved: boolean } | null {
  const route = view.route;
  const master = view.master;
  const currentWrite = route?.record.write ?? null;
  const moved = d.write !== currentWrite || route === null;
  if (!moved && sameSet(d.read, route.record.read)) return null;
  const group = view.group;
  const epoch = moved
    ? Math.max(master?.record.epoch ?? 0, route?.record.epoch ?? 0) + 1
    : route!.record.epoch;
  const ops: MultiOp[] = [];
  if (moved && d.write !== null) {
    const rec: MasterRecord = {
      v: 1,
      node: d.write,
      epoch,
      since: now,
      reason: `galera writer: ${d.reason}`,
    };
    const data = encodeRecord(masterSchema, rec, paths.master(group));
    ops.push(
      master === null
        ? { op: 'create', path: paths.master(group), data }
        : { op: 'set', path: paths.master(group), data, version: master.version },
    );
  } else if (master !== null) {
    // The route's epoch must not move past master/ unseen: fail if master/ changed meanwhile.
    ops.push({ op: 'check', path: paths.master(group), version: master.version });
  }
  const rec: HaproxyRecord = { v: 1, epoch, write: d.write, read: [...d.read] };
  const data = encodeRecord(haproxySchema, rec, paths.haproxy(group));
  ops.push(
    route === null
      ? { op: 'create', path: paths.haproxy(group), data }
      : { op: 'set', path: paths.haproxy(group), data, version: route.version },
  );
  if (moved) {
    const prefix = paths.historyPrefix(group);
    ops.push({
      op: 'create',
      path: prefix,
      mode: 'persistent_sequential',
      data: encodeRecord(
        historySchema,
        {
          v: 1,
          kind: 'galera-writer',
          from: currentWrite,
          to: d.write,
          epoch,
          startedAt: now,
          endedAt: now,
          steps: [],
          detail: {
            reason: d.reason,
            excluded: Object.fromEntries(d.excluded),
            ...(d.conflict !== undefined ? { conflict: d.conflict } : {}),
          },
        },
        prefix,
      ),
    });
  }
  return { ops, epoch, moved };
}

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
