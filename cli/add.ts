import { promoteSemiSync, type SemiSyncPolicy } from '../core/semisync';
import { ZkmhaError, errorMessage } from '../core/errors';
import { mostAdvanced } from '../core/gtid';
import { connectMysql, type MysqlConnection } from '../core/mysql/connection';
import type { Flavor, ServerState } from '../core/mysql/flavor';
import { parseNode } from '../core/names';
import {
  encodeRecord,
  groupSettingsSchema,
  haproxySchema,
  historySchema,
  masterSchema,
  metaGroupSchema,
  metaHostSchema,
  taskSchema,
  type HistoryRecord,
  type MetaGroup,
  type TaskRecord,
} from '../core/records';
import { Journal } from '../core/op/journal';
import { zkStore } from '../core/op/store';
import { listGroups } from '../core/view';
import { acquireLock } from '../core/zk/lock';
import type { MultiOp } from '../core/zk/client';
import { decodeRecord } from '../core/records';
import type { CliContext } from './context';
import { initLayout } from './init';
import { cliWorker } from './worker';
import { errantForReplica, masterOf, readStates, withNodes } from '../core/ops/admin';
import { flavorFor } from '../core/mysql/index';
import { refuse, step } from './output';
import { waitReplicating } from '../core/ops/replication';

/**
 * `mha add`: registers a group on nodes that may be freshly initialised. Everything is checked
 * first (ZooKeeper free of the group and nodes, every node reachable, GTID histories compatible,
 * the replication account usable); only then does it act. A failure while acting leaves
 * `task/<group>` (kind 'add') naming the step, so nothing half-done goes unnoticed.
 */
export interface AddInput {
  readonly group: string;
  readonly nodes: readonly string[];
  readonly writePort: number;
  readonly readPort: number;
  readonly master?: string;
  readonly flavor: 'mariadb';
  readonly semiSync: SemiSyncPolicy;
  readonly semiSyncTimeoutMs?: number;
}

export type AddPlan =
  | {
      readonly kind: 'ok';
      readonly master: string;
      readonly replicas: readonly string[];
      readonly why: string;
    }
  | { readonly kind: 'refuse'; readonly reason: string };

/** Pure: chooses the master and checks that every other node can replicate from it. */
export function planAdd(
  input: Pick<AddInput, 'nodes' | 'master'>,
  states: ReadonlyMap<string, ServerState>,
): AddPlan {
  const nodes = input.nodes;
  const st = (n: string): ServerState => {
    const s = states.get(n);
    if (s === undefined) throw new Error(`planAdd: no state for ${n}`);
    return s;
  };
  const byId = new Map<number, string>();
  for (const n of nodes) {
    const other = byId.get(st(n).serverId);
    if (other !== undefined)
      return { kind: 'refuse', reason: `nodes ${other} and ${n} have the same server_id ${st(n).serverId}` };
    byId.set(st(n).serverId, n);
  }
  for (const n of nodes) {
    const from = masterOf(st(n));
    if (from !== null && !nodes.includes(from))
      return { kind: 'refuse', reason: `node ${n} replicates from ${from}, which is not in --nodes` };
  }

  let master: string;
  let why: string;
  if (input.master !== undefined) {
    master = input.master;
    why = 'given with --master';
  } else {
    const best = mostAdvanced(nodes, (n) => st(n).gtidCurrentPos);
    if (best.kind === 'leaders') {
      master = best.leaders[0]!;
      why =
        best.leaders.length === nodes.length
          ? 'all nodes at the same GTID position: the first'
          : 'the most advanced GTID position';
    } else {
      // No node holds everything: name what the first maximal one lacks.
      master = best.kind === 'diverged' ? best.maximal[0]! : nodes[0]!;
      why = '';
    }
  }
  for (const n of nodes) {
    if (n === master) continue;
    const errant = errantForReplica(st(n), st(master));
    if (errant !== null)
      return {
        kind: 'refuse',
        reason: `errant GTIDs: node ${n} has transactions the master ${master} lacks: ${errant}`,
      };
  }
  return { kind: 'ok', master, replicas: nodes.filter((n) => n !== master), why };
}

export interface AddResult {
  readonly group: string;
  readonly master: string;
  readonly replicas: readonly string[];
  readonly why: string;
}

/** The group, its nodes and its ports are free in ZooKeeper (shared with `mha add --flavor galera`). */
export async function checkZooKeeper(
  ctx: CliContext,
  input: Pick<AddInput, 'group' | 'nodes' | 'writePort' | 'readPort'>,
): Promise<void> {
  const { zk, paths } = ctx;
  const S = 'check zookeeper';
  const [groupRec, task, master, route] = await Promise.all([
    zk.exists(paths.metaGroup(input.group)),
    zk.exists(paths.task(input.group)),
    zk.exists(paths.master(input.group)),
    zk.exists(paths.haproxy(input.group)),
  ]);
  if (groupRec !== null) throw refuse(S, `group '${input.group}' already exists`);
  if (task !== null)
    throw refuse(S, `${paths.task(input.group)} exists (an operation on '${input.group}' is open)`);
  if (master !== null || route !== null)
    throw refuse(
      S,
      `leftover ${master !== null ? paths.master(input.group) : paths.haproxy(input.group)} exists without a group record; remove it first`,
    );
  const hosts = await Promise.all(
    input.nodes.map(async (n) => [n, await zk.exists(paths.metaHost(n))] as const),
  );
  const taken = hosts.filter(([, s]) => s !== null).map(([n]) => n);
  if (taken.length > 0) throw refuse(S, `node ${taken.join(', ')} already belongs to a group`);
  // Two groups on one port would make HAProxy refuse the whole configuration.
  for (const g of await listGroups(zk, paths)) {
    const nd = await zk.getOrNull(paths.metaGroup(g));
    if (nd === null) continue;
    let other;
    try {
      other = decodeRecord(metaGroupSchema, nd.data, paths.metaGroup(g));
    } catch {
      continue;
    }
    for (const p of [input.writePort, input.readPort]) {
      if (p === other.writePort || p === other.readPort)
        throw refuse(S, `port ${p} is already used by group '${g}'`);
    }
  }
}

/** The replication account must be able to log in to the master, or every replica would stall. */
async function checkReplicationAccount(ctx: CliContext, master: string): Promise<void> {
  const { host, port } = parseNode(master);
  let c: MysqlConnection | undefined;
  try {
    c = await connectMysql(
      { host, port },
      {
        user: ctx.cfg.mysql.replicationUser,
        password: ctx.cfg.mysql.replicationPassword,
        connectTimeoutMs: ctx.cfg.mysql.connectTimeoutMs,
        // As the replicas will connect: with TLS when configured (require_secure_transport refuses it otherwise).
        ...(ctx.cfg.mysql.tls !== undefined ? { tls: ctx.cfg.mysql.tls } : {}),
      },
    );
  } catch (err) {
    throw refuse(
      'check replication account',
      `user '${ctx.cfg.mysql.replicationUser}' cannot log in to ${master}: ${errorMessage(err)}`,
    );
  } finally {
    await c?.close();
  }
}

export async function runAdd(ctx: CliContext, input: AddInput): Promise<AddResult> {
  const { zk, paths, cfg } = ctx;
  const flavor: Flavor = flavorFor(input.flavor);
  await step('check zookeeper', () => checkZooKeeper(ctx, input));

  return withNodes(cfg, input.nodes, async (conns) => {
    // ---- validate: nothing has been changed up to the end of this block ----
    const states = await readStates(flavor, conns);
    const plan = planAdd(input, states);
    if (plan.kind === 'refuse') throw refuse('check nodes', plan.reason);
    if (plan.replicas.length > 0) await checkReplicationAccount(ctx, plan.master);

    // ---- act ----
    const startedAt = Date.now();
    const steps: { name: string; ms: number; ok: boolean }[] = [];
    const settings = groupSettingsSchema.parse({
      semiSync: input.semiSync,
      ...(input.semiSyncTimeoutMs !== undefined ? { semiSyncTimeoutMs: input.semiSyncTimeoutMs } : {}),
    });
    const task: TaskRecord = {
      v: 1,
      id: `add-${startedAt}`,
      kind: 'add',
      step: 'start',
      oldMaster: null,
      candidate: plan.master,
      startedAt,
      worker: cliWorker(),
      epoch: 1,
      detail: { nodes: input.nodes },
    };
    await step('prepare zookeeper', () => initLayout(ctx));
    // Held from before the task exists until after it is deleted (or left on a failure): a task
    // nobody holds the lock for is one whose process is gone, and the server workers say so.
    const lock = await step(`lock ${input.group}`, () =>
      acquireLock(zk, paths, input.group, { timeoutMs: 5000, owner: cliWorker() }),
    );
    try {
      try {
        await zk.create(
          paths.task(input.group),
          encodeRecord(taskSchema, task, paths.task(input.group)),
          'persistent',
        );
      } catch (err) {
        if (err instanceof ZkmhaError && err.code === 'ZK_NODE_EXISTS')
          throw refuse('check zookeeper', `another operation on '${input.group}' started meanwhile`);
        throw err;
      }
      // The task journal (core/op): each step recorded compare-and-set, refused once the lock is lost.
      const journal = new Journal(zkStore(zk, paths), input.group, lock, cliWorker(), {
        record: task,
        version: 0,
      });
      const setStep = (name: string, detail: Record<string, unknown> = {}): Promise<void> =>
        journal.save({ step: name, detail: { ...journal.task.detail, ...detail } });
      const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
        const t0 = Date.now();
        await setStep(name);
        try {
          const r = await fn();
          steps.push({ name, ms: Date.now() - t0, ok: true });
          return r;
        } catch (err) {
          steps.push({ name, ms: Date.now() - t0, ok: false });
          throw err;
        }
      };

      try {
        await timed('promote master', () =>
          step(`make ${plan.master} the master`, () =>
            flavor.promote(conns.get(plan.master)!, {
              ...promoteSemiSync(settings),
              parallelApply: settings.parallelApply,
            }),
          ),
        );
        await timed('start replication', () =>
          Promise.all(
            plan.replicas.map((r) => {
              const { host, port } = parseNode(plan.master);
              return step(`replicate ${r} from ${plan.master}`, () =>
                flavor.replicateFrom(conns.get(r)!, {
                  host,
                  port,
                  user: cfg.mysql.replicationUser,
                  password: cfg.mysql.replicationPassword,
                  semiSync: settings.semiSync !== 'off',
                  parallelApply: settings.parallelApply,
                  // current_pos: a node holding part of the master's history (checked above) resumes after it.
                  gtidMode: 'current_pos',
                  tls: cfg.mysql.tls,
                }),
              );
            }),
          ),
        );
        await timed('await replication', () =>
          Promise.all(
            plan.replicas.map((r) => waitReplicating(flavor, conns.get(r)!, r, plan.master, 10000)),
          ),
        );
        await timed('commit', () => commitAdd(ctx, input, plan, settings, steps, startedAt, journal.version));
      } catch (err) {
        const msg = errorMessage(err);
        try {
          await setStep(journal.task.step, { failed: msg.slice(0, 2000), failedAt: Date.now() });
        } catch {
          // ZooKeeper is unreachable: the task record still names the step reached.
        }
        throw new ZkmhaError(
          err instanceof ZkmhaError ? err.code : 'OPERATION_FAILED',
          `${msg} (left ${paths.task(input.group)} at step '${journal.task.step}')`,
          { step: journal.task.step },
        );
      }
      return { group: input.group, master: plan.master, replicas: plan.replicas, why: plan.why };
    } finally {
      await lock.release().catch(() => undefined);
    }
  });
}

/** What registers a group (both flavors): meta_group, meta_host per node, master/ and haproxy/ at epoch 1, a history event. */
export interface Registration {
  readonly group: string;
  readonly meta: Pick<MetaGroup, 'flavor' | 'writePort' | 'readPort' | 'settings'> & {
    readonly members: readonly string[];
  };
  readonly writer: string;
  readonly readers: readonly string[];
  /** master/<group>.reason */
  readonly reason: string;
  readonly history: Pick<HistoryRecord, 'startedAt' | 'steps' | 'detail'>;
}

export async function registrationOps(ctx: CliContext, r: Registration): Promise<MultiOp[]> {
  const { zk, paths } = ctx;
  const now = Date.now();
  const g = r.group;
  const ops: MultiOp[] = [
    {
      op: 'create',
      path: paths.metaGroup(g),
      data: encodeRecord(
        metaGroupSchema,
        { v: 1, name: g, ...r.meta, members: [...r.meta.members] },
        paths.metaGroup(g),
      ),
    },
    ...r.meta.members.map((n): MultiOp => {
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
        { v: 1, node: r.writer, epoch: 1, since: now, reason: r.reason },
        paths.master(g),
      ),
    },
    {
      op: 'create',
      path: paths.haproxy(g),
      data: encodeRecord(
        haproxySchema,
        { v: 1, epoch: 1, write: r.writer, read: [...r.readers] },
        paths.haproxy(g),
      ),
    },
  ];
  if ((await zk.exists(paths.historyDir(g))) === null) ops.push({ op: 'create', path: paths.historyDir(g) });
  const event: HistoryRecord = {
    v: 1,
    kind: 'add',
    from: null,
    to: r.writer,
    epoch: 1,
    endedAt: now,
    ...r.history,
    steps: [...r.history.steps],
  };
  ops.push({
    op: 'create',
    path: paths.historyPrefix(g),
    data: encodeRecord(historySchema, event, paths.historyPrefix(g)),
    mode: 'persistent_sequential',
  });
  return ops;
}

/** One multi: the registration and the task deleted. */
async function commitAdd(
  ctx: CliContext,
  input: AddInput,
  plan: Extract<AddPlan, { kind: 'ok' }>,
  settings: ReturnType<typeof groupSettingsSchema.parse>,
  steps: readonly { name: string; ms: number; ok: boolean }[],
  startedAt: number,
  taskVersion: number,
): Promise<void> {
  const ops = await registrationOps(ctx, {
    group: input.group,
    meta: {
      flavor: input.flavor,
      writePort: input.writePort,
      readPort: input.readPort,
      members: input.nodes,
      settings,
    },
    writer: plan.master,
    readers: plan.replicas,
    reason: `mha add (${plan.why || 'chosen'})`,
    history: { startedAt, steps: [...steps], detail: { replicas: plan.replicas } },
  });
  ops.push({ op: 'delete', path: ctx.paths.task(input.group), version: taskVersion });
  await ctx.zk.multi(ops);
}
