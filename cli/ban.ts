import { isZkmhaError } from '../core/errors';
import { alertSchema, decodeRecord, encodeRecord, metaHostSchema, type MetaHost } from '../core/records';
import { alertOf, readGroupView } from '../core/view';
import type { MultiOp } from '../core/zk/client';
import type { CliContext } from './context';
import { refuse, step } from './output';

/**
 * `mha unban <node>`: lifts the ban the server workers put on a node that failed over too often
 * (meta_host/<node>.banned, issue 11 hole 5), so it may be promoted again. A command of its own,
 * not an option of `mha alerts --clear`: clearing a group's alerts acknowledges a failover, and
 * that must not quietly let a flapping node become master again; a ban is lifted per node, by a
 * person who looked at it. The node-banned alert is updated in the same multi.
 */
export interface UnbanResult {
  readonly node: string;
  readonly group: string;
  /** The ban lifted; null when the node was not banned (nothing changed). */
  readonly lifted: NonNullable<MetaHost['banned']> | null;
}

export async function unban(ctx: CliContext, node: string): Promise<UnbanResult> {
  const p = ctx.paths.metaHost(node);
  for (let attempt = 1; ; attempt++) {
    const nd = await step(`read ${p}`, () => ctx.zk.getOrNull(p));
    if (nd === null) throw refuse(`look up ${node}`, `node ${node} is not registered (no ${p})`);
    const host = decodeRecord(metaHostSchema, nd.data, p);
    if (host.banned === undefined) return { node, group: host.group, lifted: null };
    const { banned, ...rest } = host;
    const ops: MultiOp[] = [
      { op: 'set', path: p, data: encodeRecord(metaHostSchema, rest, p), version: nd.stat.version },
    ];
    // Keep the alert exact: drop this node from it (or the alert, when it was the last one).
    const view = await readGroupView(ctx.zk, ctx.paths, host.group);
    const alert = alertOf(view, 'node-banned');
    if (alert !== undefined) {
      const nodes = { ...(alert.record.detail.nodes as Record<string, unknown> | undefined) };
      delete nodes[node];
      const ap = ctx.paths.watchDown(host.group, 'node-banned');
      ops.push(
        Object.keys(nodes).length === 0
          ? { op: 'delete', path: ap, version: alert.version }
          : {
              op: 'set',
              path: ap,
              data: encodeRecord(
                alertSchema,
                { ...alert.record, detail: { ...alert.record.detail, nodes } },
                ap,
              ),
              version: alert.version,
            },
      );
    }
    try {
      await step(`write ${p}`, () => ctx.zk.multi(ops));
      return { node, group: host.group, lifted: banned };
    } catch (err) {
      const raced = isZkmhaError(err, 'ZK_BAD_VERSION') || isZkmhaError(err, 'ZK_NO_NODE');
      if (!raced || attempt >= 3) throw err;
    }
  }
}
