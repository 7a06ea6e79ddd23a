import { ZkmhaError, isZkmhaError } from '../errors';
import {
  alertSchema,
  type AlertKind,
  encodeRecord,
  haproxySchema,
  historySchema,
  masterSchema,
  rejoinSchema,
  type HaproxyRecord,
  type HistoryRecord,
  type MasterRecord,
  type RejoinRecord,
} from '../records';
import type { MultiOp, Stat, Zk } from '../zk/client';
import type { ZkPaths } from '../zk/paths';

/**
 * The ZooKeeper side of a master change (design §3 rules, §5.4 and §5.8).
 *
 * `writeFencingRoute` is the first write of a failover or switchover: `haproxy/<group>` with
 * `write: null` and the NEW epoch, compare-and-set on the version read before. From then on no
 * router sends writes anywhere.
 *
 * `commitMasterChange` is the last one: ONE multi that writes `master/<group>` (epoch+1, CAS),
 * `haproxy/<group>` (CAS), a `history/<group>/event-`, optionally `rejoin/<old>`, deletes
 * `task/<group>`, plus any extra ops (e.g. an alert). Either all of it happens or none.
 */

export interface FencingRoute {
  /** The new epoch (current master epoch + 1). */
  readonly epoch: number;
  /** Read pool to keep serving meanwhile. */
  readonly read: readonly string[];
  /** Version of haproxy/<group> as read; null when the node does not exist yet. */
  readonly version: number | null;
}

/** Writes `{write: null, epoch}`; throws ZK_BAD_VERSION if the route changed since it was read. */
export async function writeFencingRoute(
  zk: Pick<Zk, 'create' | 'set'>,
  paths: ZkPaths,
  group: string,
  r: FencingRoute,
): Promise<{ record: HaproxyRecord; version: number }> {
  const path = paths.haproxy(group);
  const record: HaproxyRecord = { v: 1, epoch: r.epoch, write: null, read: [...r.read] };
  const data = encodeRecord(haproxySchema, record, path);
  if (r.version === null) {
    await zk.create(path, data, 'persistent');
    return { record, version: 0 };
  }
  const stat: Stat = await zk.set(path, data, r.version);
  return { record, version: stat.version };
}

export interface MasterChange {
  readonly group: string;
  readonly newMaster: string;
  /** The new epoch (previous master epoch + 1; 1 for a new group). */
  readonly epoch: number;
  /** 'failover', 'switchover', 'add', 'setmaster', … (anti-flap looks for 'failover'). */
  readonly reason: string;
  /** Version of master/<group> as read (CAS); null to create it (a new group). */
  readonly masterVersion: number | null;
  readonly route: { readonly read: readonly string[]; readonly version: number | null };
  /** The history event; `v` and `epoch` are filled in. */
  readonly history: Omit<HistoryRecord, 'v' | 'epoch'>;
  /** rejoin/<old master>: version when it exists (overwritten, CAS), null to create. */
  readonly rejoin?: {
    readonly node: string;
    readonly record: Omit<RejoinRecord, 'v'>;
    readonly version: number | null;
  };
  /** Delete task/<group> at this version (CAS); omit when there is no task record. */
  readonly taskVersion?: number;
  readonly extraOps?: readonly MultiOp[];
  /** Default Date.now(). */
  readonly now?: number;
}

export interface CommittedChange {
  readonly master: MasterRecord;
  readonly route: HaproxyRecord;
  /** Path of the history event created. */
  readonly historyPath: string;
}

function masterChangeOps(
  paths: ZkPaths,
  c: MasterChange,
  now: number,
): { ops: MultiOp[]; master: MasterRecord; route: HaproxyRecord; historyIndex: number } {
  const ops: MultiOp[] = [];
  const masterPath = paths.master(c.group);
  const master: MasterRecord = { v: 1, node: c.newMaster, epoch: c.epoch, since: now, reason: c.reason };
  const masterData = encodeRecord(masterSchema, master, masterPath);
  ops.push(
    c.masterVersion === null
      ? { op: 'create', path: masterPath, data: masterData }
      : { op: 'set', path: masterPath, data: masterData, version: c.masterVersion },
  );

  const routePath = paths.haproxy(c.group);
  const route: HaproxyRecord = {
    v: 1,
    epoch: c.epoch,
    write: c.newMaster,
    read: c.route.read.filter((n) => n !== c.newMaster),
  };
  const routeData = encodeRecord(haproxySchema, route, routePath);
  ops.push(
    c.route.version === null
      ? { op: 'create', path: routePath, data: routeData }
      : { op: 'set', path: routePath, data: routeData, version: c.route.version },
  );

  const historyIndex = ops.length;
  const historyPrefix = paths.historyPrefix(c.group);
  ops.push({
    op: 'create',
    path: historyPrefix,
    data: encodeRecord(historySchema, { v: 1, epoch: c.epoch, ...c.history }, historyPrefix),
    mode: 'persistent_sequential',
  });

  if (c.rejoin !== undefined) {
    const rejoinPath = paths.rejoin(c.rejoin.node);
    const data = encodeRecord(rejoinSchema, { v: 1, ...c.rejoin.record }, rejoinPath);
    ops.push(
      c.rejoin.version === null
        ? { op: 'create', path: rejoinPath, data }
        : { op: 'set', path: rejoinPath, data, version: c.rejoin.version },
    );
  }
  if (c.taskVersion !== undefined)
    ops.push({ op: 'delete', path: paths.task(c.group), version: c.taskVersion });
  ops.push(...(c.extraOps ?? []));
  return { ops, master, route, historyIndex };
}

/**
 * Commits a master change atomically. A concurrent change (another worker, an operator) makes
 * it fail with ZK_BAD_VERSION / ZK_NODE_EXISTS and change nothing; the caller re-reads and decides.
 * A missing history/<group> parent is created and the multi retried once.
 */
export async function commitMasterChange(
  zk: Pick<Zk, 'multi' | 'mkdirp'>,
  paths: ZkPaths,
  c: MasterChange,
): Promise<CommittedChange> {
  if (c.epoch < 1 || !Number.isInteger(c.epoch))
    throw new ZkmhaError('BAD_USAGE', `commitMasterChange: invalid epoch ${c.epoch}`);
  const { ops, master, route, historyIndex } = masterChangeOps(paths, c, c.now ?? Date.now());
  try {
    const res = await zk.multi(ops);
    return { master, route, historyPath: res[historyIndex]?.path ?? '' };
  } catch (err) {
    if (!(isZkmhaError(err, 'ZK_NO_NODE') && err.details?.opIndex === historyIndex)) throw err;
    await zk.mkdirp(paths.historyDir(c.group));
    const res = await zk.multi(ops);
    return { master, route, historyPath: res[historyIndex]?.path ?? '' };
  }
}

/**
 * Ops that create or overwrite one alert (`watch_down/<group>` or `…__<kind>`); `version` is the
 * alert's current version when it exists (CAS), null to create it.
 */
export function alertOps(
  paths: ZkPaths,
  group: string,
  kind: AlertKind | undefined,
  record: { kind: AlertKind; at: number; detail: Record<string, unknown> },
  version: number | null,
): MultiOp[] {
  const path = paths.watchDown(group, kind);
  const data = encodeRecord(alertSchema, { v: 1, ...record }, path);
  return [version === null ? { op: 'create', path, data } : { op: 'set', path, data, version }];
}

/** Ops that append one history event (the history/<group> parent must exist). */
export function historyOps(paths: ZkPaths, group: string, record: Omit<HistoryRecord, 'v'>): MultiOp[] {
  const prefix = paths.historyPrefix(group);
  return [
    {
      op: 'create',
      path: prefix,
      data: encodeRecord(historySchema, { v: 1, ...record }, prefix),
      mode: 'persistent_sequential',
    },
  ];
}
