import { backlogTrx } from './backlog';
import { chooseCandidate, type NodePosition } from './candidate';
import { drainProgressSchema, type DrainProgress } from './ops/drain';
import { diagnoseRecords, type RecordDiagnosis } from './repair';
import { semiSyncHealth, type SemiSyncHealth } from './semisync';
import type { MysqlConfig } from './config';
import { ZkmhaError, errorMessage } from './errors';
import { NodeConnections, readGtidPositions } from './ops';
import { isGroupName } from './names';
import {
  decodeRecord,
  metaRouterSchema,
  serverSchema,
  taskSchema,
  type MetaRouterRecord,
  type OnlineRecord,
  type ServerRecord,
} from './records';
import { readLockHolder, type LockHolder } from './zk/lock';
import { listGroups, readGroupView, type GroupView } from './view';
import { flavorFor } from './mysql/index';
import type { Zk } from './zk/client';
import type { ZkPaths } from './zk/paths';

/**
 * The read-only status model shared by `mha status` (cli/status.ts renders it) and `mha web`
 * (serves it as JSON). A pure `buildGroupStatus(view, positions, routers, lock)` turns one
 * snapshot into what is shown; the I/O around it reads ZooKeeper and, unless told not to, every
 * member's replication position directly (the same reads a failover would make), so "which
 * replica would be promoted right now" is answered with the real positions.
 *
 * `StatusSource` is what the readers need: a ZooKeeper session, the layout, the MySQL admin account.
 */
export interface StatusSource {
  readonly zk: Zk;
  readonly paths: ZkPaths;
  readonly cfg: { readonly mysql: MysqlConfig };
}

export type NodeState = 'online' | 'down' | 'drained' | 'out of read pool' | 'rejoin pending' | 'banned';

export interface NodeStatus {
  readonly node: string;
  readonly role: 'master' | 'replica' | 'none' | 'unknown';
  /** First entry is online/down; then drained, out of read pool, rejoin pending as they apply. */
  readonly state: readonly NodeState[];
  readonly readOnly: boolean | null;
  readonly gtid: string | null;
  readonly lagSeconds: number | null;
  /**
   * Transactions received (Gtid_IO_Pos) but not yet applied (gtid_slave_pos), core/backlog: what
   * a promotion would have to drain first. Live read, else the heartbeat's; null when unknown.
   */
  readonly backlogTrx: number | null;
  /** The heartbeat's estimate of the seconds to apply them. */
  readonly backlogSeconds: number | null;
  readonly ioRunning: boolean | null;
  readonly sqlRunning: boolean | null;
  readonly replicatesFrom: string | null;
  readonly priority: number | null;
  readonly dc: string | null;
  readonly inReadPool: boolean;
  readonly isWriteTarget: boolean;
  readonly agent: boolean;
  /** Banned from candidacy after too many failovers (meta_host.banned; `mha unban <node>`). */
  readonly banned: { readonly at: number; readonly epochs: readonly number[] } | null;
}

export interface RouterStatus {
  readonly id: string;
  readonly host: string;
  /** Epoch this router applied for the group; null when it has not applied the group. */
  readonly appliedEpoch: number | null;
  readonly behind: boolean;
  readonly lastError: string | null;
  readonly at: number;
}

export interface GroupStatus {
  readonly group: string;
  readonly flavor: string | null;
  readonly writePort: number | null;
  readonly readPort: number | null;
  readonly master: {
    readonly node: string;
    readonly epoch: number;
    readonly since: number;
    readonly reason: string;
  } | null;
  readonly route: {
    readonly epoch: number;
    readonly write: string | null;
    readonly read: readonly string[];
  } | null;
  readonly white: { readonly reason: string; readonly by: string; readonly at: number } | null;
  /** The master's acknowledgements against the group's semi-sync policy (null: no group or master). */
  readonly semiSync: SemiSyncHealth | null;
  readonly task: {
    readonly kind: string;
    readonly step: string;
    readonly worker: string;
    readonly startedAt: number;
    /**
     * A switchover / add with nobody holding lock/<group>: its process is gone (the server workers
     * resolve it after a grace period and raise `operation-abandoned`).
     */
    readonly noLockHolder: boolean;
    /** The failover's drain progress (core/ops/drain), while it drains. */
    readonly drain?: DrainProgress | null;
  } | null;
  readonly lock: { readonly owner: string; readonly at: number; readonly waiters: number } | null;
  readonly nodes: readonly NodeStatus[];
  readonly routers: readonly RouterStatus[];
  readonly alerts: readonly {
    readonly name: string;
    readonly kind: string;
    readonly at: number;
    readonly detail: Readonly<Record<string, unknown>>;
  }[];
  readonly candidate:
    { readonly node: string; readonly reason: string } | { readonly node: null; readonly reason: string };
  /**
   * master/ or haproxy/ invalid or inconsistent with no operation open (core/repair.ts): what is
   * wrong, whether the server workers rewrite it, and what will fix it.
   */
  readonly records: RecordDiagnosis | null;
  /** Things an operator should look at (routers behind, epochs apart, invalid records, …). */
  readonly warnings: readonly string[];
}

/** task/<group> of a group that has no meta_group/ record: an `mha add` running, or dead. */
export interface OpenTaskStatus {
  readonly group: string;
  readonly kind: string;
  readonly step: string;
  readonly worker: string;
  readonly startedAt: number;
  readonly lock: { readonly owner: string; readonly at: number } | null;
  readonly alerts: GroupStatus['alerts'];
}

export interface StatusReport {
  readonly groups: readonly GroupStatus[];
  /** Open tasks of groups not registered (yet). */
  readonly openTasks: readonly OpenTaskStatus[];
  readonly servers: readonly ({ readonly id: string } & ServerRecord)[];
  readonly routers: readonly ({ readonly id: string } & MetaRouterRecord)[];
  readonly problems: readonly { readonly path: string; readonly message: string }[];
}

/** Positions as the online/ records report them (used with --no-mysql, and for unreachable nodes). */
export function positionFromOnline(o: OnlineRecord | null): NodePosition {
  if (o === null) return { reachable: false, error: 'no online/ record' };
  return {
    reachable: true,
    serverId: -1,
    readOnly: o.readOnly,
    gtidBinlogPos: o.gtidCurrent,
    gtidSlavePos: o.gtidSlave ?? '',
    replica:
      o.role === 'replica' || o.masterNode !== undefined
        ? {
            masterNode: o.masterNode ?? null,
            ioRunning: o.ioRunning === true,
            sqlRunning: o.sqlRunning === true,
            gtidIoPos: o.gtidIo ?? '',
            lastSqlError: '',
          }
        : null,
  };
}

export function buildGroupStatus(
  view: GroupView,
  positions: ReadonlyMap<string, NodePosition>,
  routers: readonly ({ readonly id: string } & MetaRouterRecord)[],
  lock: LockHolder | null,
): GroupStatus {
  const warnings: string[] = view.problems.map((p) => `invalid ${p.path}: ${p.message}`);
  const master = view.master?.record ?? null;
  const route = view.route?.record ?? null;
  const read = new Set(route?.read ?? []);

  const nodes = view.members.map((m): NodeStatus => {
    const o = m.online;
    const pos = positions.get(m.node);
    const live = pos !== undefined && pos.reachable ? pos : null;
    const state: NodeState[] = [o !== null ? 'online' : 'down'];
    if (m.slaveDown?.record.drained === true) state.push('drained');
    else if (m.slaveDown !== null) state.push('out of read pool');
    if (m.rejoin !== null) state.push('rejoin pending');
    if (m.host?.banned !== undefined) state.push('banned');
    const role = o?.role ?? (master?.node === m.node ? 'master' : 'unknown');
    return {
      node: m.node,
      role,
      state,
      readOnly: live?.readOnly ?? o?.readOnly ?? null,
      gtid: live !== null ? live.gtidBinlogPos : (o?.gtidCurrent ?? null),
      lagSeconds: o?.lagSeconds ?? null,
      backlogTrx:
        live?.replica != null
          ? backlogTrx(live.replica.gtidIoPos, live.gtidSlavePos)
          : (o?.backlogTrx ?? null),
      backlogSeconds: o?.backlogSeconds ?? null,
      ioRunning: live !== null ? (live.replica?.ioRunning ?? null) : (o?.ioRunning ?? null),
      sqlRunning: live !== null ? (live.replica?.sqlRunning ?? null) : (o?.sqlRunning ?? null),
      replicatesFrom: live !== null ? (live.replica?.masterNode ?? null) : (o?.masterNode ?? null),
      priority: m.host?.priority ?? null,
      dc: m.host?.dc ?? null,
      inReadPool: read.has(m.node),
      isWriteTarget: route?.write === m.node,
      agent: m.agent !== null,
      banned:
        m.host?.banned !== undefined ? { at: m.host.banned.at, epochs: [...m.host.banned.epochs] } : null,
    };
  });

  const routerStatus = routers.map((r): RouterStatus => {
    const applied = r.applied[view.group];
    const appliedEpoch = applied === undefined ? null : applied;
    const behind = route !== null && (appliedEpoch === null || appliedEpoch < route.epoch);
    if (behind)
      warnings.push(`router ${r.id} applied epoch ${appliedEpoch ?? 'none'}, route is at ${route.epoch}`);
    if (r.lastError !== undefined) warnings.push(`router ${r.id}: ${r.lastError}`);
    return { id: r.id, host: r.host, appliedEpoch, behind, lastError: r.lastError ?? null, at: r.at };
  });

  if (master !== null && route !== null && master.epoch !== route.epoch)
    warnings.push(`master/ is at epoch ${master.epoch}, haproxy/ at ${route.epoch}`);
  if (master !== null && route !== null && route.write !== null && route.write !== master.node)
    warnings.push(`route writes to ${route.write}, master record names ${master.node}`);
  if (route !== null && route.write === null) warnings.push('writes are cut (route write: null)');
  const writable = nodes.filter((n) => n.readOnly === false);
  if (writable.length > 1)
    warnings.push(`more than one writable node: ${writable.map((n) => n.node).join(', ')}`);
  if (master !== null && !view.members.some((m) => m.node === master.node))
    warnings.push(`master ${master.node} is not a member`);

  const records = diagnoseRecords(view);
  if (records !== null)
    warnings.push(
      `${records.found} — ${records.repair.by === 'worker' ? 'will be repaired' : `not repaired automatically: ${records.repair.why}`}: ${records.fix}`,
    );
  for (const n of nodes)
    if (n.banned !== null)
      warnings.push(
        `${n.node} is banned from candidacy after failovers at epochs ${n.banned.epochs.join(', ')}: 'mha unban ${n.node}' lifts it`,
      );

  const choice = chooseCandidate(view, positions);
  const candidate =
    choice.kind === 'chosen'
      ? { node: choice.node, reason: choice.reason }
      : { node: null, reason: `${choice.reason}: ${choice.detail}` };

  return {
    group: view.group,
    flavor: view.meta?.flavor ?? null,
    writePort: view.meta?.writePort ?? null,
    readPort: view.meta?.readPort ?? null,
    master:
      master === null
        ? null
        : { node: master.node, epoch: master.epoch, since: master.since, reason: master.reason },
    route: route === null ? null : { epoch: route.epoch, write: route.write, read: route.read },
    white: view.white,
    semiSync:
      view.meta === null || master === null
        ? null
        : semiSyncHealth(
            view.meta.settings.semiSync,
            view.members.find((m) => m.node === master.node)?.online ?? null,
          ),
    task:
      view.task === null
        ? null
        : {
            kind: view.task.record.kind,
            step: view.task.record.step,
            worker: view.task.record.worker,
            startedAt: view.task.record.startedAt,
            noLockHolder: view.task.record.kind !== 'failover' && lock === null,
            drain:
              view.task.record.step === 'drain'
                ? (drainProgressSchema.safeParse(view.task.record.detail.drainProgress).data ?? null)
                : null,
          },
    lock: lock === null ? null : { owner: lock.owner, at: lock.at, waiters: lock.waiters },
    nodes,
    routers: routerStatus,
    alerts: view.alerts.map((a) => ({
      name: a.name,
      kind: a.record.kind,
      at: a.record.at,
      detail: a.record.detail,
    })),
    candidate,
    records,
    warnings,
  };
}

async function readEphemerals<T>(
  ctx: StatusSource,
  dir: string,
  decode: (name: string, data: Buffer | null, path: string) => T,
  problems: { path: string; message: string }[],
): Promise<({ id: string } & T)[]> {
  const names = await ctx.zk.childrenOrEmpty(dir);
  const out = await Promise.all(
    names.sort().map(async (id) => {
      const p = `${dir}/${id}`;
      const nd = await ctx.zk.getOrNull(p);
      if (nd === null) return null;
      try {
        return { id, ...decode(id, nd.data, p) };
      } catch (err) {
        problems.push({ path: p, message: errorMessage(err) });
        return null;
      }
    }),
  );
  return out.filter((x): x is Awaited<{ id: string } & T> => x !== null);
}

export async function readStatus(
  ctx: StatusSource,
  opts: { group?: string; mysql: boolean },
): Promise<StatusReport> {
  const problems: { path: string; message: string }[] = [];
  const listed = opts.group !== undefined ? [opts.group] : await listGroups(ctx.zk, ctx.paths, problems);
  // Tasks of groups without meta_group/ (an add not committed): shown apart.
  const taskGroups = (
    opts.group !== undefined ? [opts.group] : (await ctx.zk.childrenOrEmpty(ctx.paths.dir('task'))).sort()
  ).filter((g) => isGroupName(g));
  const openTasks: OpenTaskStatus[] = [];
  for (const g of taskGroups) {
    if (opts.group === undefined && listed.includes(g)) continue;
    if ((await ctx.zk.exists(ctx.paths.metaGroup(g))) !== null) continue;
    const t = await readOpenTask(ctx, g, problems);
    if (t !== null) openTasks.push(t);
  }
  const groups = listed.filter((g) => !openTasks.some((t) => t.group === g));
  const { routers, servers } = await readProcesses(ctx, problems);
  const conns = NodeConnections.fromConfig(ctx.cfg.mysql);
  try {
    const statuses = await Promise.all(
      groups.map(async (g) => {
        const snap = await readGroupSnapshot(ctx, g, opts.mysql ? conns : null);
        if (opts.group !== undefined && snap.view.meta === null && !snap.view.invalid.meta) {
          throw new ZkmhaError('CONFLICT', `read group ${g}: group '${g}' does not exist`);
        }
        return buildGroupStatus(snap.view, snap.positions, routers, snap.lock);
      }),
    );
    return { groups: statuses, openTasks, servers, routers, problems };
  } finally {
    await conns.closeAll();
  }
}

/** meta_router/* and servers/* (the routers' applied epochs, the live server workers). */
export async function readProcesses(
  ctx: StatusSource,
  problems: { path: string; message: string }[],
): Promise<Pick<StatusReport, 'routers' | 'servers'>> {
  const [routers, servers] = await Promise.all([
    readEphemerals(
      ctx,
      ctx.paths.dir('meta_router'),
      (_n, d, p) => decodeRecord(metaRouterSchema, d, p),
      problems,
    ),
    readEphemerals(ctx, ctx.paths.dir('servers'), (_n, d, p) => decodeRecord(serverSchema, d, p), problems),
  ]);
  return { routers, servers };
}

/** Everything `buildGroupStatus` needs of one group except the routers. */
export interface GroupSnapshot {
  readonly view: GroupView;
  readonly positions: ReadonlyMap<string, NodePosition>;
  readonly lock: LockHolder | null;
}

/**
 * One group's view and lock holder, with positions from its online/ records — or, given `conns`,
 * read from every member directly (MariaDB groups), bounded by `probeTimeoutMs`.
 */
export async function readGroupSnapshot(
  ctx: StatusSource,
  group: string,
  conns: NodeConnections | null,
  probeTimeoutMs = ctx.cfg.mysql.connectTimeoutMs + 1000,
): Promise<GroupSnapshot> {
  const [view, lock] = await Promise.all([
    readGroupView(ctx.zk, ctx.paths, group),
    readLockHolder(ctx.zk, ctx.paths, group).catch(() => null),
  ]);
  const positions = new Map<string, NodePosition>(
    view.members.map((m) => [m.node, positionFromOnline(m.online)]),
  );
  if (conns !== null && view.meta !== null && view.meta.flavor === 'mariadb') {
    const direct = await readGtidPositions(
      conns,
      flavorFor(view.meta.flavor),
      view.members.map((m) => m.node),
      probeTimeoutMs,
    );
    for (const [n, p] of direct.positions) positions.set(n, p);
  }
  return { view, positions, lock };
}

async function readOpenTask(
  ctx: StatusSource,
  group: string,
  problems: { path: string; message: string }[],
): Promise<OpenTaskStatus | null> {
  const p = ctx.paths.task(group);
  const nd = await ctx.zk.getOrNull(p);
  if (nd === null) return null;
  let task;
  try {
    task = decodeRecord(taskSchema, nd.data, p);
  } catch (err) {
    problems.push({ path: p, message: errorMessage(err) });
    return null;
  }
  const [lock, view] = await Promise.all([
    readLockHolder(ctx.zk, ctx.paths, group).catch(() => null),
    readGroupView(ctx.zk, ctx.paths, group),
  ]);
  return {
    group,
    kind: task.kind,
    step: task.step,
    worker: task.worker,
    startedAt: task.startedAt,
    lock: lock === null ? null : { owner: lock.owner, at: lock.at },
    alerts: view.alerts.map((a) => ({
      name: a.name,
      kind: a.record.kind,
      at: a.record.at,
      detail: a.record.detail,
    })),
  };
}
