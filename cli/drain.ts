import { encodeRecord, slaveDownSchema, type OnlineRecord } from '../core/records';
import type { MemberView } from '../core/view';
import type { MultiOp } from '../core/zk/client';
import type { CliContext } from './context';
import { existingGroup, groupOfNode, setReadPool, withGroupLock } from './lookup';
import { galeraDrainLocked, galeraUndrainLocked } from './galera-drain';
import { refuse, step } from './output';

/**
 * `mha drain <node>` / `mha undrain <node>`: a replica out of / back into the read pool; replication
 * is not touched. A drain is `slave_down/<group>/<node>` with `drained: true` — an operator's
 * entry the server's read-pool upkeep leaves alone — plus the node removed from
 * `haproxy/<group>.read` (compare-and-set, epoch unchanged), in one multi, under lock/<group>.
 */
export interface DrainResult {
  readonly group: string;
  readonly node: string;
  /** What changed: false when the node was already in the asked state. */
  readonly changed: boolean;
  /** undrain only: back in the read pool now, or left to the server until it is healthy. */
  readonly inReadPool?: boolean;
  /** Galera, drain of the writer: where writes went, at which epoch. */
  readonly writer?: string | null;
  readonly epoch?: number;
  readonly note?: string;
}

/** A replica the read pool may take right now, from its online/ record. */
export function healthyReplica(online: OnlineRecord | null, master: string | null): boolean {
  return (
    online !== null &&
    online.role === 'replica' &&
    online.readOnly &&
    online.ioRunning === true &&
    online.sqlRunning === true &&
    (online.masterNode === undefined || master === null || online.masterNode === master)
  );
}

export async function drain(ctx: CliContext, node: string): Promise<DrainResult> {
  const { group } = await groupOfNode(ctx, node);
  return withGroupLock(ctx, group, () => drainLocked(ctx, group, node));
}

async function drainLocked(ctx: CliContext, group: string, node: string): Promise<DrainResult> {
  const { zk, paths } = ctx;
  const view = await existingGroup(ctx, group, { route: true });
  const S = 'check zookeeper';
  if (!view.meta!.members.includes(node)) throw refuse(S, `${node} is not a member of '${group}'`);
  if (view.meta!.flavor === 'galera') return galeraDrainLocked(ctx, view, node);
  if (view.master?.record.node === node || view.route!.record.write === node)
    throw refuse(S, `${node} is the master of '${group}'; only replicas can be drained`);
  const m = view.members.find((x) => x.node === node)!;
  if (m.slaveDown?.record.drained === true && !view.route!.record.read.includes(node))
    return { group, node, changed: false };

  await zk.mkdirp(paths.slaveDownDir(group));
  const p = paths.slaveDown(group, node);
  const data = encodeRecord(
    slaveDownSchema,
    { v: 1, since: Date.now(), reason: 'drained by operator', drained: true },
    p,
  );
  const ops: MultiOp[] = [
    m.slaveDown === null
      ? { op: 'create', path: p, data }
      : { op: 'set', path: p, data, version: m.slaveDown.version },
  ];
  const route = view.route!;
  if (route.record.read.includes(node)) {
    const read = route.record.read.filter((r) => r !== node);
    ops.push(setReadPool(ctx, group, route, read));
  }
  await step('drain', () => zk.multi(ops));
  return { group, node, changed: true };
}

export async function undrain(ctx: CliContext, node: string): Promise<DrainResult> {
  const { group } = await groupOfNode(ctx, node);
  return withGroupLock(ctx, group, () => undrainLocked(ctx, group, node));
}

async function undrainLocked(ctx: CliContext, group: string, node: string): Promise<DrainResult> {
  const { zk, paths } = ctx;
  const view = await existingGroup(ctx, group, { route: true });
  const m: MemberView | undefined = view.members.find((x) => x.node === node);
  if (m === undefined) throw refuse('check zookeeper', `${node} is not a member of '${group}'`);
  if (view.meta!.flavor === 'galera') return galeraUndrainLocked(ctx, view, node);
  if (m.slaveDown === null || m.slaveDown.record.drained !== true)
    return {
      group,
      node,
      changed: false,
      inReadPool: view.route!.record.read.includes(node),
      note: 'was not drained',
    };

  const route = view.route!;
  const healthy = healthyReplica(m.online, view.master?.record.node ?? null) && m.rejoin === null;
  const p = paths.slaveDown(group, node);
  const ops: MultiOp[] = [];
  if (healthy) {
    ops.push({ op: 'delete', path: p, version: m.slaveDown.version });
    if (!route.record.read.includes(node))
      ops.push(setReadPool(ctx, group, route, [...route.record.read, node]));
  } else {
    // Not healthy now: hand it to the server's read-pool upkeep, which returns it once healthy.
    ops.push({
      op: 'set',
      path: p,
      data: encodeRecord(
        slaveDownSchema,
        { v: 1, since: Date.now(), reason: 'undrained while not healthy' },
        p,
      ),
      version: m.slaveDown.version,
    });
  }
  await step('undrain', () => zk.multi(ops));
  return healthy
    ? { group, node, changed: true, inReadPool: true }
    : {
        group,
        node,
        changed: true,
        inReadPool: false,
        note: 'not a healthy replica right now (online/ record); the server returns it to the read pool once it is',
      };
}
