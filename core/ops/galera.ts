import { decideGaleraRoute, type GaleraRoute } from '../galera-route';
import {
  encodeRecord,
  haproxySchema,
  historySchema,
  masterSchema,
  type HaproxyRecord,
  type MasterRecord,
  type MetaHost,
  type OnlineRecord,
} from '../records';
import type { GroupView } from '../view';
import type { MultiOp } from '../zk/client';
import type { ZkPaths } from '../zk/paths';

/**
 * A Galera group's route as ZooKeeper operations (issue 13), shared by the server worker's upkeep
 * and `mha drain` / `mha undrain`: a writer move is committed like a failover's — master/ and
 * haproxy/ with the epoch + 1 and a history event, in one multi with compare-and-set on both — so
 * routers and agents see the same epoch rule; a read-pool change keeps the epoch.
 */

/**
 * decideGaleraRoute on a group view; `drained` overrides which nodes count as drained (a drain or
 * undrain about to be committed in the same multi). Null when a record is invalid.
 */
export function galeraRouteOf(view: GroupView, drained?: ReadonlySet<string>): GaleraRoute | null {
  if (view.meta === null || view.invalid.meta || view.invalid.master || view.invalid.route) return null;
  const online = new Map<string, OnlineRecord>();
  const hosts = new Map<string, Pick<MetaHost, 'priority' | 'dc'>>();
  for (const m of view.members) {
    if (m.online !== null) online.set(m.node, m.online);
    if (m.host !== null) hosts.set(m.node, m.host);
  }
  return decideGaleraRoute({
    members: view.meta.members,
    online,
    hosts,
    currentWriter: view.route?.record.write ?? null,
    drained: drained ?? drainedNodes(view),
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

/** The members an operator drained (slave_down/ with drained: true). */
export function drainedNodes(view: GroupView): Set<string> {
  return new Set([...view.slaveDown].filter(([, sd]) => sd.record.drained === true).map(([n]) => n));
}
