import { drainedNodes, galeraRouteOf, galeraRouteOps } from '../core/ops/galera';
import { encodeRecord, slaveDownSchema } from '../core/records';
import { readProcesses } from '../core/status';
import { delay } from '../core/timeout';
import type { GroupView } from '../core/view';
import type { MultiOp } from '../core/zk/client';
import type { CliContext } from './context';
import type { DrainResult } from './drain';
import { refuse, step } from './output';

/**
 * `mha drain` / `mha undrain` on a Galera node (issue 13). Every Galera node takes writes, so the
 * writer can be drained too: the writer moves to another routable node (decideGaleraRoute with
 * the node counted as drained) in the same multi that records the drain — master/ and haproxy/
 * with the epoch + 1 and a `galera-writer` history event, as the worker's own moves — and the drain
 * reports ready for maintenance only once every live router applied that epoch. A drain that
 * would leave the group without a writer is refused. Undrain returns the node to the read pool
 * in one multi (the writer stays where it is: moves cost applications a reconnect).
 */
const ROUTERS_TIMEOUT_MS = 10_000;

export async function galeraDrainLocked(
  ctx: CliContext,
  view: GroupView,
  node: string,
): Promise<DrainResult> {
  const { zk, paths } = ctx;
  const group = view.group;
  const m = view.members.find((x) => x.node === node)!;
  const route = view.route!.record;
  const wasWriter = route.write === node;
  if (m.slaveDown?.record.drained === true && !wasWriter && !route.read.includes(node))
    return { group, node, changed: false };

  const drained = drainedNodes(view);
  drained.add(node);
  const d = galeraRouteOf(view, drained);
  if (d === null)
    throw refuse('check zookeeper', `a record of '${group}' is invalid (see mha status ${group})`);
  if (wasWriter && d.write === null) {
    const others = [...d.excluded].filter(([n]) => n !== node).map(([n, why]) => `${n}: ${why}`);
    throw refuse(
      'choose writer',
      `${node} is the writer of '${group}' and no other node can take writes (${others.join(', ') || 'no other member'}); drain refused`,
    );
  }
  const now = Date.now();
  const plan = galeraRouteOps(view, d, paths, now);
  const p = paths.slaveDown(group, node);
  const data = encodeRecord(
    slaveDownSchema,
    { v: 1, since: now, reason: 'drained by operator', drained: true },
    p,
  );
  const ops: MultiOp[] = [
    m.slaveDown === null
      ? { op: 'create', path: p, data }
      : { op: 'set', path: p, data, version: m.slaveDown.version },
    ...(plan?.ops ?? []),
  ];
  await zk.mkdirp(paths.slaveDownDir(group));
  await zk.mkdirp(paths.historyDir(group));
  await step('drain', () => zk.multi(ops));
  if (plan === null || !plan.moved) return { group, node, changed: true };
  const pending = await step('wait for routers', () => routersBehind(ctx, group, plan.epoch));
  return {
    group,
    node,
    changed: true,
    writer: d.write,
    epoch: plan.epoch,
    ...(pending.length > 0
      ? {
          note: `router(s) ${pending.join(', ')} had not applied epoch ${plan.epoch} within ${ROUTERS_TIMEOUT_MS} ms: writes may still reach ${node} through them`,
        }
      : {}),
  };
}

export async function galeraUndrainLocked(
  ctx: CliContext,
  view: GroupView,
  node: string,
): Promise<DrainResult> {
  const { zk, paths } = ctx;
  const group = view.group;
  const m = view.members.find((x) => x.node === node)!;
  const route = view.route!.record;
  if (m.slaveDown === null || m.slaveDown.record.drained !== true)
    return { group, node, changed: false, inReadPool: route.read.includes(node), note: 'was not drained' };
  const drained = drainedNodes(view);
  drained.delete(node);
  const d = galeraRouteOf(view, drained);
  if (d === null)
    throw refuse('check zookeeper', `a record of '${group}' is invalid (see mha status ${group})`);
  const plan = galeraRouteOps(view, d, paths, Date.now());
  await zk.mkdirp(paths.historyDir(group));
  await step('undrain', () =>
    zk.multi([
      { op: 'delete', path: paths.slaveDown(group, node), version: m.slaveDown!.version },
      ...(plan?.ops ?? []),
    ]),
  );
  const inReadPool = d.read.includes(node);
  return inReadPool
    ? { group, node, changed: true, inReadPool }
    : {
        group,
        node,
        changed: true,
        inReadPool,
        note: `not routable right now (${d.excluded.get(node) ?? 'unknown'}); the server routes it once it is`,
      };
}

/** The live routers that have not applied `epoch` for `group` within ROUTERS_TIMEOUT_MS. */
async function routersBehind(ctx: CliContext, group: string, epoch: number): Promise<string[]> {
  const deadline = Date.now() + ROUTERS_TIMEOUT_MS;
  for (;;) {
    const { routers } = await readProcesses(ctx, []);
    const behind = routers.filter((r) => (r.applied[group] ?? -1) < epoch).map((r) => r.id);
    if (behind.length === 0 || Date.now() > deadline) return behind;
    await delay(20);
  }
}
