import { encodeRecord, metaGroupSchema, metaHostSchema, type MetaHost } from '../core/records';
import { parseNode } from '../core/names';
import type { MultiOp } from '../core/zk/client';
import type { CliContext } from './context';
import { existingGroup, readMeta, refuseOpenTask, setReadPool, withGroupLock } from './lookup';
import { errantForReplica, readStates, withNodes } from '../core/ops/admin';
import { flavorFor } from '../core/mysql/index';
import { refuse, step } from './output';
import { replicateFromMaster } from '../core/ops/replication';

/**
 * `mha addhost`: a new replica joins a running group — checked (reachable, no errant GTIDs),
 * re-pointed to the master with GTID auto-position, then registered in one multi (host record,
 * member list and read pool, each compare-and-set).
 * `mha removehost`: unregisters a replica (never the master); replication is left as it is.
 */
export interface AddHostInput {
  readonly group: string;
  readonly node: string;
  readonly priority: 0 | 1 | 2;
  readonly dc?: string;
}

export interface AddHostResult {
  readonly group: string;
  readonly node: string;
  readonly master: string;
  readonly inReadPool: boolean;
}

export async function addHost(ctx: CliContext, input: AddHostInput): Promise<AddHostResult> {
  await existingGroup(ctx, input.group, {
    replicationOnly: {
      command: 'mha addhost',
      instead: 'adding a member to a registered Galera group is not supported yet',
    },
  });
  return withGroupLock(ctx, input.group, () => addHostLocked(ctx, input));
}

async function addHostLocked(ctx: CliContext, input: AddHostInput): Promise<AddHostResult> {
  const { zk, paths, cfg } = ctx;
  const view = await existingGroup(ctx, input.group, { master: true, route: true });
  const { record: meta, version: metaVersion } = await readMeta(ctx, input.group);
  const master = view.master!.record.node;
  const S = 'check zookeeper';
  if (meta.members.includes(input.node))
    throw refuse(S, `${input.node} is already a member of '${input.group}'`);
  if ((await zk.exists(paths.metaHost(input.node))) !== null)
    throw refuse(S, `${input.node} already belongs to a group (${paths.metaHost(input.node)})`);
  refuseOpenTask(ctx, input.group, view);
  const flavor = flavorFor(meta.flavor);

  await withNodes(cfg, [master, input.node], async (conns) => {
    const states = await readStates(flavor, conns);
    const errant = errantForReplica(states.get(input.node)!, states.get(master)!);
    if (errant !== null)
      throw refuse(
        'check nodes',
        `errant GTIDs: node ${input.node} has transactions the master ${master} lacks: ${errant}`,
      );
    await replicateFromMaster(
      flavor,
      conns.get(input.node)!,
      input.node,
      master,
      cfg.mysql,
      meta.settings.semiSync !== 'off',
      meta.settings.parallelApply,
    );
  });

  const { host, port } = parseNode(input.node);
  const hostRec: MetaHost = {
    v: 1,
    group: input.group,
    host,
    port,
    priority: input.priority,
    ...(input.dc !== undefined ? { dc: input.dc } : {}),
  };
  const route = view.route!;
  const read = route.record.read.includes(input.node)
    ? route.record.read
    : [...route.record.read, input.node];
  const ops: MultiOp[] = [
    {
      op: 'create',
      path: paths.metaHost(input.node),
      data: encodeRecord(metaHostSchema, hostRec, paths.metaHost(input.node)),
    },
    {
      op: 'set',
      path: paths.metaGroup(input.group),
      data: encodeRecord(
        metaGroupSchema,
        { ...meta, members: [...meta.members, input.node] },
        paths.metaGroup(input.group),
      ),
      version: metaVersion,
    },
    setReadPool(ctx, input.group, route, read),
  ];
  await step('register host', () => zk.multi(ops));
  return { group: input.group, node: input.node, master, inReadPool: true };
}

export async function removeHost(ctx: CliContext, group: string, node: string): Promise<void> {
  await existingGroup(ctx, group);
  return withGroupLock(ctx, group, () => removeHostLocked(ctx, group, node));
}

async function removeHostLocked(ctx: CliContext, group: string, node: string): Promise<void> {
  const { zk, paths } = ctx;
  const view = await existingGroup(ctx, group);
  const { record: meta, version: metaVersion } = await readMeta(ctx, group);
  const S = 'check zookeeper';
  if (!meta.members.includes(node)) throw refuse(S, `${node} is not a member of '${group}'`);
  if (view.master?.record.node === node)
    throw refuse(S, `${node} is the master of '${group}'; switch over first`);
  if (view.route?.record.write === node) throw refuse(S, `${node} is the write target of '${group}'`);
  refuseOpenTask(ctx, group, view);
  const ops: MultiOp[] = [
    {
      op: 'set',
      path: paths.metaGroup(group),
      data: encodeRecord(
        metaGroupSchema,
        { ...meta, members: meta.members.filter((m) => m !== node) },
        paths.metaGroup(group),
      ),
      version: metaVersion,
    },
  ];
  const hostStat = await zk.exists(paths.metaHost(node));
  if (hostStat !== null) ops.push({ op: 'delete', path: paths.metaHost(node), version: hostStat.version });
  if (view.route !== null && view.route.record.read.includes(node))
    ops.push(
      setReadPool(
        ctx,
        group,
        view.route,
        view.route.record.read.filter((r) => r !== node),
      ),
    );
  const m = view.members.find((x) => x.node === node);
  if (m?.slaveDown)
    ops.push({ op: 'delete', path: paths.slaveDown(group, node), version: m.slaveDown.version });
  if (m?.rejoin) ops.push({ op: 'delete', path: paths.rejoin(node), version: m.rejoin.version });
  await step('unregister host', () => zk.multi(ops));
}
