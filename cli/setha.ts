import type { MultiOp } from '../core/zk/client';
import type { CliContext } from './context';
import { existingGroup, groupOfNode, refuseOpenTask, setReadPool, withGroupLock } from './lookup';
import { errantTransactions, readStates, withNodes } from '../core/ops/admin';
import { flavorFor } from '../core/mysql/index';
import { refuse, step } from './output';
import { replicateFromMaster } from '../core/ops/replication';

/**
 * `mha setha <node>`: return a recovered node (typically an old master) to service. Refused while
 * the node holds transactions the master lacks (the automatic rejoin of a later issue undoes them;
 * until then an operator must). Otherwise: re-pointed to the master (GTID current_pos, so an old
 * master's own binlog counts), read-only, replication awaited; then one multi deletes rejoin/<node>
 * and slave_down/<group>/<node> and puts the node back into the read pool.
 */
export interface SetHaResult {
  readonly group: string;
  readonly node: string;
  readonly master: string;
  readonly clearedRejoin: boolean;
  readonly clearedSlaveDown: boolean;
}

export async function setHa(ctx: CliContext, node: string): Promise<SetHaResult> {
  const { group } = await groupOfNode(ctx, node);
  return withGroupLock(ctx, group, () => setHaLocked(ctx, group, node));
}

async function setHaLocked(ctx: CliContext, group: string, node: string): Promise<SetHaResult> {
  const { zk, paths, cfg } = ctx;
  const view = await existingGroup(ctx, group, {
    master: true,
    route: true,
    replicationOnly: {
      command: 'mha setha',
      instead: 'a Galera node rejoins by itself (IST/SST); mha undrain returns a drained one',
    },
  });
  const meta = view.meta!;
  const master = view.master!.record.node;
  const S = 'check zookeeper';
  if (!meta.members.includes(node)) throw refuse(S, `${node} is not a member of '${group}'`);
  if (master === node) throw refuse(S, `${node} is the master of '${group}'`);
  refuseOpenTask(ctx, group, view);
  const flavor = flavorFor(meta.flavor);

  await withNodes(cfg, [master, node], async (conns) => {
    const states = await readStates(flavor, conns);
    // With a rejoin record, the new master's position at promotion is the reference: whatever the
    // node holds beyond it was never carried over. Without one, positions against the master now.
    const rejoin = view.members.find((x) => x.node === node)?.rejoin?.record;
    const reference =
      rejoin !== undefined && rejoin.newMaster === master
        ? rejoin.gtidAtPromotion
        : states.get(master)!.gtidCurrentPos;
    const errant = errantTransactions(states.get(node)!.gtidCurrentPos, reference);
    if (errant !== null) {
      throw refuse(
        'check transactions',
        `${node} holds transactions the master ${master} lacks: ${errant}; they must be undone (or applied to the master) before it can rejoin`,
      );
    }
    await replicateFromMaster(
      flavor,
      conns.get(node)!,
      node,
      master,
      cfg.mysql,
      meta.settings.semiSync !== 'off',
      meta.settings.parallelApply,
    );
  });

  // Re-read (compare-and-set on what is current).
  const after = await existingGroup(ctx, group, { master: true, route: true });
  if (after.master!.record.node !== master)
    throw refuse('commit', `the master changed to ${after.master!.record.node} meanwhile; run setha again`);
  const m = after.members.find((x) => x.node === node);
  const ops: MultiOp[] = [];
  if (m?.rejoin) ops.push({ op: 'delete', path: paths.rejoin(node), version: m.rejoin.version });
  if (m?.slaveDown)
    ops.push({ op: 'delete', path: paths.slaveDown(group, node), version: m.slaveDown.version });
  const route = after.route!;
  if (!route.record.read.includes(node))
    ops.push(setReadPool(ctx, group, route, [...route.record.read, node]));
  if (ops.length > 0) await step('commit', () => zk.multi(ops));
  return { group, node, master, clearedRejoin: m?.rejoin != null, clearedSlaveDown: m?.slaveDown != null };
}
