import type { ServerState } from '../core/mysql/flavor';
import { commitMasterChange, historyOps } from '../core/ops';
import { encodeRecord, masterSchema } from '../core/records';
import { acquireLock } from '../core/zk/lock';
import type { CliContext } from './context';
import { cliWorker } from './add';
import { existingGroup } from './lookup';
import { masterOf, readStates, withNodes } from './mysql';
import { flavorFor } from '../core/mysql/index';
import { refuse, step } from './output';

/**
 * `mha setmaster <group> <node> [--reroute]`: after manual work, adopt the node that really is the
 * master. Checked on MySQL first (the node writable and not replicating, every other member a
 * read-only replica of it with both threads running), then `master/` epoch+1 — and with
 * --reroute `haproxy/` (same epoch, write = node, read = the replicas) — in one multi under the
 * group's lock.
 */

/** Pure: what keeps `node` from being adopted as master; empty when the topology is right. */
export function checkTopology(node: string, members: readonly string[], states: ReadonlyMap<string, ServerState>): string[] {
  const problems: string[] = [];
  const m = states.get(node);
  if (m === undefined) return [`${node}: no state`];
  if (m.readOnly) problems.push(`${node} is read-only`);
  if (m.replica !== null && (m.replica.ioRunning || m.replica.sqlRunning)) problems.push(`${node} still replicates from ${masterOf(m)}`);
  for (const n of members) {
    if (n === node) continue;
    const s = states.get(n);
    if (s === undefined) {
      problems.push(`${n}: no state`);
      continue;
    }
    if (!s.readOnly) problems.push(`${n} is writable`);
    if (s.replica === null) problems.push(`${n} does not replicate`);
    else if (masterOf(s) !== node) problems.push(`${n} replicates from ${masterOf(s)}, not ${node}`);
    else if (!s.replica.ioRunning || !s.replica.sqlRunning) {
      const errs = [s.replica.lastIoError, s.replica.lastSqlError].filter((e) => e !== '').join('; ');
      problems.push(`${n}: replication threads not running (io ${s.replica.ioRunning ? 'yes' : 'no'}, sql ${s.replica.sqlRunning ? 'yes' : 'no'}${errs ? `: ${errs}` : ''})`);
    }
  }
  return problems;
}

export interface SetMasterResult {
  readonly group: string;
  readonly node: string;
  readonly epoch: number;
  readonly rerouted: boolean;
  readonly previous: string | null;
}

export async function setMaster(ctx: CliContext, group: string, node: string, reroute: boolean): Promise<SetMasterResult> {
  const first = await existingGroup(ctx, group);
  if (!first.meta!.members.includes(node)) throw refuse('check zookeeper', `${node} is not a member of '${group}'`);
  const lock = await step(`lock ${group}`, () => acquireLock(ctx.zk, ctx.paths, group, { timeoutMs: 5000, owner: cliWorker() }));
  try {
    const view = await existingGroup(ctx, group);
    if (view.task !== null) throw refuse('check zookeeper', `an operation on '${group}' is open (${ctx.paths.task(group)}, kind ${view.task.record.kind}, step ${view.task.record.step})`);
    const meta = view.meta!;
    const flavor = flavorFor(meta.flavor);
    const states = await withNodes(ctx.cfg, meta.members, (conns) => readStates(flavor, conns));
    const problems = checkTopology(node, meta.members, states);
    if (problems.length > 0) throw refuse('check topology', problems.join('; '));
    if (!lock.isHeld()) throw refuse(`lock ${group}`, 'lost the lock');

    const epoch = (view.master?.record.epoch ?? 0) + 1;
    const now = Date.now();
    const replicas = meta.members.filter((m) => m !== node);
    const drained = new Set([...view.slaveDown.keys()]);
    const history = { kind: 'setmaster', from: view.master?.record.node ?? null, to: node, startedAt: now, endedAt: Date.now(), steps: [], detail: { rerouted: reroute } };
    if (reroute) {
      await step('commit', () =>
        commitMasterChange(ctx.zk, ctx.paths, {
          group,
          newMaster: node,
          epoch,
          reason: 'setmaster',
          masterVersion: view.master?.version ?? null,
          route: { read: replicas.filter((r) => !drained.has(r)), version: view.route?.version ?? null },
          history,
          now,
        }),
      );
    } else {
      // The route is left as it is (routers keep the old epoch until a --reroute or failover).
      const p = ctx.paths.master(group);
      const data = encodeRecord(masterSchema, { v: 1, node, epoch, since: now, reason: 'setmaster' }, p);
      await ctx.zk.mkdirp(ctx.paths.historyDir(group));
      await step('commit', () =>
        ctx.zk.multi([
          view.master === null ? { op: 'create', path: p, data } : { op: 'set', path: p, data, version: view.master.version },
          ...historyOps(ctx.paths, group, { ...history, epoch }),
        ]),
      );
    }
    return { group, node, epoch, rerouted: reroute, previous: view.master?.record.node ?? null };
  } finally {
    await lock.release().catch(() => undefined);
  }
}
