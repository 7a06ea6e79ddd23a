import type { GaleraState } from '../core/mysql/galera';
import { galera } from '../core/mysql';
import { readStates, withNodes } from '../core/ops/admin';
import { groupSettingsSchema } from '../core/records';
import { initLayout } from './init';
import type { CliContext } from './context';
import { checkZooKeeper, registrationOps, type AddResult } from './add';
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
  const { cfg } = ctx;
  await step('check zookeeper', () => checkZooKeeper(ctx, input));
  const startedAt = Date.now();
  const states = await withNodes(cfg, input.nodes, (conns) => readStates(galera, conns));
  const plan = planGaleraAdd(input, new Map([...states].map(([n, s]) => [n, s.galera])));
  if (plan.kind === 'refuse') throw refuse('check nodes', plan.reason);

  await step('prepare zookeeper', () => initLayout(ctx));
  const ops = await registrationOps(ctx, {
    group: input.group,
    meta: {
      flavor: 'galera',
      writePort: input.writePort,
      readPort: input.readPort,
      members: input.nodes,
      settings: groupSettingsSchema.parse({}),
    },
    writer: plan.writer,
    readers: plan.readers,
    reason: `mha add --flavor galera (${plan.why})`,
    history: {
      startedAt,
      steps: [],
      detail: {
        flavor: 'galera',
        readers: plan.readers,
        stateUuid: states.get(plan.writer)!.galera!.clusterStateUuid,
      },
    },
  });
  await step('commit', () => ctx.zk.multi(ops));
  return { group: input.group, master: plan.writer, replicas: plan.readers, why: plan.why };
}
