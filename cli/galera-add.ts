import type { GaleraState } from '../core/mysql/galera';
import { galera } from '../core/mysql';
import { parseNode } from '../core/names';
import { readStates, withNodes } from '../core/ops/admin';
import {
  encodeRecord,
  groupSettingsSchema,
  haproxySchema,
  historySchema,
  masterSchema,
  metaGroupSchema,
  metaHostSchema,
} from '../core/records';
import type { MultiOp } from '../core/zk/client';
import { initLayout } from './init';
import type { CliContext } from './context';
import { checkZooKeeper, type AddResult } from './add';
import { refuse, step } from './output';

/**
 * `mha add --flavor galera` (issue 13): registers an existing, healthy Galera cluster. Nothing is
 * changed on MySQL — Galera itself keeps the members consistent — so the whole registration is
 * one ZooKeeper multi (group, hosts, master/ and haproxy/ at epoch 1, a history event): it either
 * happens or not, and no task journal is needed. From then on the server workers keep the single
 * writer and the read pool (core/galera-route.ts).
 */
export interface GaleraAddInput {
  readonly group: string;
  readonly nodes: readonly string[];
  readonly writePort: number;
  readonly readPort: number;
  /** The first writer; default: the first node by name (the route's own tie-break). */
  readonly master?: string;
}

export type GaleraAddPlan =
  | {
      readonly kind: 'ok';
      readonly writer: string;
      readonly readers: readonly string[];
      readonly why: string;
    }
  | { readonly kind: 'refuse'; readonly reason: string };

/**
 * Pure: every node must be a Synced, ready member of one Primary Component, and that component
 * must be exactly the nodes named (a member left out would take writes nobody routes or fences).
 */
export function planGaleraAdd(
  input: Pick<GaleraAddInput, 'nodes' | 'master'>,
  states: ReadonlyMap<string, GaleraState | undefined>,
): GaleraAddPlan {
  const nodes = input.nodes;
  for (const n of nodes) {
    const g = states.get(n);
    if (g === undefined) return { kind: 'refuse', reason: `${n} is not a Galera node (wsrep is off)` };
    if (g.clusterStatus !== 'Primary')
      return { kind: 'refuse', reason: `${n} is ${g.clusterStatus}, not in a Primary Component` };
    if (g.localState !== 4 || !g.ready)
      return {
        kind: 'refuse',
        reason: `${n} is ${g.localStateComment || `state ${g.localState}`}, not Synced and ready`,
      };
  }
  const uuids = new Set(nodes.map((n) => states.get(n)!.clusterStateUuid));
  if (uuids.size > 1)
    return {
      kind: 'refuse',
      reason: `the nodes belong to different clusters (state UUIDs ${[...uuids].sort().join(', ')})`,
    };
  for (const n of nodes) {
    const size = states.get(n)!.clusterSize;
    if (size !== nodes.length)
      return {
        kind: 'refuse',
        reason: `${n} sees a component of ${size} members but --nodes names ${nodes.length}: register every member of the cluster`,
      };
  }
  const writer = input.master ?? [...nodes].sort()[0]!;
  const why = input.master !== undefined ? 'given with --master' : 'the first node by name';
  return { kind: 'ok', writer, readers: nodes.filter((n) => n !== writer), why };
}

export async function runGaleraAdd(ctx: CliContext, input: GaleraAddInput): Promise<AddResult> {
  const { zk, paths, cfg } = ctx;
  await step('check zookeeper', () => checkZooKeeper(ctx, input));
  const startedAt = Date.now();
  const states = await withNodes(cfg, input.nodes, (conns) => readStates(galera, conns));
  const plan = planGaleraAdd(input, new Map([...states].map(([n, s]) => [n, s.galera])));
  if (plan.kind === 'refuse') throw refuse('check nodes', plan.reason);

  await step('prepare zookeeper', () => initLayout(ctx));
  const g = input.group;
  const now = Date.now();
  const ops: MultiOp[] = [
    {
      op: 'create',
      path: paths.metaGroup(g),
      data: encodeRecord(
        metaGroupSchema,
        {
          v: 1,
          name: g,
          flavor: 'galera',
          writePort: input.writePort,
          readPort: input.readPort,
          members: [...input.nodes],
          settings: groupSettingsSchema.parse({}),
        },
        paths.metaGroup(g),
      ),
    },
    ...input.nodes.map((n): MultiOp => {
      const { host, port } = parseNode(n);
      return {
        op: 'create',
        path: paths.metaHost(n),
        data: encodeRecord(metaHostSchema, { v: 1, group: g, host, port, priority: 1 }, paths.metaHost(n)),
      };
    }),
    {
      op: 'create',
      path: paths.master(g),
      data: encodeRecord(
        masterSchema,
        { v: 1, node: plan.writer, epoch: 1, since: now, reason: `mha add --flavor galera (${plan.why})` },
        paths.master(g),
      ),
    },
    {
      op: 'create',
      path: paths.haproxy(g),
      data: encodeRecord(
        haproxySchema,
        { v: 1, epoch: 1, write: plan.writer, read: [...plan.readers] },
        paths.haproxy(g),
      ),
    },
  ];
  if ((await zk.exists(paths.historyDir(g))) === null) ops.push({ op: 'create', path: paths.historyDir(g) });
  ops.push({
    op: 'create',
    path: paths.historyPrefix(g),
    mode: 'persistent_sequential',
    data: encodeRecord(
      historySchema,
      {
        v: 1,
        kind: 'add',
        from: null,
        to: plan.writer,
        epoch: 1,
        startedAt,
        endedAt: now,
        steps: [],
        detail: {
          flavor: 'galera',
          readers: plan.readers,
          stateUuid: states.get(plan.writer)!.galera!.clusterStateUuid,
        },
      },
      paths.historyPrefix(g),
    ),
  });
  await step('commit', () => zk.multi(ops));
  return { group: g, master: plan.writer, replicas: plan.readers, why: plan.why };
}
