import type { ServerState } from '../core/mysql/flavor';
import { commitMasterChange, historyOps } from '../core/ops';
import { encodeRecord, masterSchema } from '../core/records';
import type { MultiOp } from '../core/zk/client';
import type { CliContext } from './context';
import { existingGroup, withGroupLock } from './lookup';
import { masterOf, readStates, withNodes } from '../core/ops/admin';
import { flavorFor } from '../core/mysql/index';
import { refuse, step } from './output';

/**
 * `mha setmaster <group> <node> [--reroute]`: after manual work, adopt the node that really is the
 * master. Checked on MySQL first (the node writable and not replicating, every other member a
 * read-only replica of it with both threads running), then `master/` epoch+1 — and with
 * --reroute `haproxy/` (same epoch, write = node, read = the replicas) — in one multi under the
 * group's lock. It also settles a switchover or add whose CLI died (its task record is deleted
 * in the same multi); a failover task is left to the server workers.
 */

/** Pure: what keeps `node` from being adopted as master; empty when the topology is right. */
export function checkTopology(
  node: string,
  members: readonly string[],
  states: ReadonlyMap<string, ServerState>,
): string[] {
  const problems: string[] = [];
  const m = states.get(node);
  if (m === undefined) return [`${node}: no state`];
  if (m.readOnly) problems.push(`${node} is read-only`);
  if (m.replica !== null && (m.replica.ioRunning || m.replica.sqlRunning))
    problems.push(`${node} still replicates from ${masterOf(m)}`);
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
      problems.push(
        `${n}: replication threads not running (io ${s.replica.ioRunning ? 'yes' : 'no'}, sql ${s.replica.sqlRunning ? 'yes' : 'no'}${errs ? `: ${errs}` : ''})`,
      );
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
  /** Kind of a stale CLI task (switchover / add) this command settled, if any. */
  readonly clearedTask: string | null;
}

export async function setMaster(
  ctx: CliContext,
  group: string,
  node: string,
  reroute: boolean,
): Promise<SetMasterResult> {
  const first = await existingGroup(ctx, group, {
    replicationOnly: {
      command: 'mha setmaster',
      instead: 'the server workers choose the Galera writer; mha drain moves it',
    },
  });
  if (!first.meta!.members.includes(node))
    throw refuse('check zookeeper', `${node} is not a member of '${group}'`);
  return withGroupLock(ctx, group, async (held) => {
    const view = await existingGroup(ctx, group);
    // A failover in task/ belongs to the server workers (they resume it). A switchover or add left
    // there is one whose CLI died: we hold the lock, so nobody runs it; this command settles it.
    const staleTask = view.task;
    if (staleTask !== null && staleTask.record.kind === 'failover') {
      throw refuse(
        'check zookeeper',
        `a failover of '${group}' is open (${ctx.paths.task(group)}, step ${staleTask.record.step}); the server workers resume it`,
      );
    }
    const meta = view.meta!;
    const flavor = flavorFor(meta.flavor);
    const states = await withNodes(ctx.cfg, meta.members, (conns) => readStates(flavor, conns));
    const problems = checkTopology(node, meta.members, states);
    if (problems.length > 0) throw refuse('check topology', problems.join('; '));
    if (!held()) throw refuse(`lock ${group}`, 'lost the lock');

    // Above every epoch in use, so no router ignores the new route as older than one it applied.
    const epoch = Math.max(view.master?.record.epoch ?? 0, view.route?.record.epoch ?? 0) + 1;
    const now = Date.now();
    const replicas = meta.members.filter((m) => m !== node);
    const drained = new Set([...view.slaveDown.keys()]);
    const history = {
      kind: 'setmaster',
      from: view.master?.record.node ?? null,
      to: node,
      startedAt: now,
      endedAt: Date.now(),
      steps: [],
      detail: {
        rerouted: reroute,
        ...(staleTask !== null
          ? {
              clearedTask: {
                kind: staleTask.record.kind,
                step: staleTask.record.step,
                worker: staleTask.record.worker,
              },
            }
          : {}),
      },
    };
    const taskOps: MultiOp[] =
      staleTask !== null ? [{ op: 'delete', path: ctx.paths.task(group), version: staleTask.version }] : [];
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
          ...(staleTask !== null ? { taskVersion: staleTask.version } : {}),
        }),
      );
    } else {
      // The route is left as it is (routers keep the old epoch until a --reroute or failover).
      const p = ctx.paths.master(group);
      const data = encodeRecord(masterSchema, { v: 1, node, epoch, since: now, reason: 'setmaster' }, p);
      await ctx.zk.mkdirp(ctx.paths.historyDir(group));
      await step('commit', () =>
        ctx.zk.multi([
          view.master === null
            ? { op: 'create', path: p, data }
            : { op: 'set', path: p, data, version: view.master.version },
          ...historyOps(ctx.paths, group, { ...history, epoch }),
          ...taskOps,
        ]),
      );
    }
    return {
      group,
      node,
      epoch,
      rerouted: reroute,
      previous: view.master?.record.node ?? null,
      clearedTask: staleTask?.record.kind ?? null,
    };
  });
}
