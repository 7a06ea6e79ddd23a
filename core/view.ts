import type { z } from 'zod';
import { errorMessage } from './errors';
import {
  agentSchema,
  alertSchema,
  decodeRecord,
  haproxySchema,
  masterSchema,
  metaGroupSchema,
  metaHostSchema,
  onlineSchema,
  rejoinSchema,
  slaveDownSchema,
  taskSchema,
  whiteSchema,
  type AgentRecord,
  type AlertRecord,
  type HaproxyRecord,
  type MasterRecord,
  type MetaGroup,
  type MetaHost,
  type OnlineRecord,
  type RejoinRecord,
  type SlaveDownRecord,
  type TaskRecord,
  type WhiteRecord,
} from './records';
import { isGroupName, isNodeName } from './names';
import type { Zk } from './zk/client';
import { parseWatchDownName, type ZkPaths } from './zk/paths';

/**
 * An immutable snapshot of one group as ZooKeeper holds it (style: snapshot → pure decision →
 * thin adapter). Built by `readGroupView` with every read issued in parallel (two rounds: the
 * group record, then everything that depends on its member list).
 *
 * A value that fails validation never reaches the typed fields: it is reported in `problems`
 * (path + message) and the field reads as if the node were absent — except that `valid` flags
 * say whether the record was present-but-bad, so a decision can refuse to act on a group whose
 * master or route record is broken (design §2: "the last good state stays in force").
 */
export interface Versioned<T> {
  readonly record: T;
  /** znode version, for compare-and-set. */
  readonly version: number;
}

/** The reads a snapshot needs: a live ZooKeeper client, or core/op's in-memory store in unit tests. */
export type ZkReader = Pick<Zk, 'getOrNull' | 'childrenOrEmpty'>;

export interface ViewProblem {
  readonly path: string;
  readonly message: string;
}

export interface MemberView {
  readonly node: string;
  /** meta_host/<node>; null when absent or invalid. */
  readonly host: MetaHost | null;
  /** online/<node> (ephemeral, exists while mysqld is healthy). */
  readonly online: OnlineRecord | null;
  /** agent/<node> (ephemeral, exists while the agent process holds a session). */
  readonly agent: AgentRecord | null;
  /** slave_down/<group>/<node>: the node is out of the read pool. */
  readonly slaveDown: Versioned<SlaveDownRecord> | null;
  /** rejoin/<node>: an old master that must reconcile before serving again. */
  readonly rejoin: Versioned<RejoinRecord> | null;
}

export interface AlertView {
  /** Child name under watch_down/ (`<group>` or `<group>__<kind>`). */
  readonly name: string;
  /** Kind from the name; undefined for the bare `watch_down/<group>` alert. */
  readonly nameKind: string | undefined;
  readonly record: AlertRecord;
  readonly version: number;
}

export interface GroupView {
  readonly group: string;
  /** Local clock when the snapshot was taken (ms). */
  readonly readAt: number;
  readonly meta: MetaGroup | null;
  /** One entry per meta_group member, in the record's order. */
  readonly members: readonly MemberView[];
  readonly master: Versioned<MasterRecord> | null;
  readonly route: Versioned<HaproxyRecord> | null;
  readonly white: WhiteRecord | null;
  readonly task: Versioned<TaskRecord> | null;
  /** slave_down/<group>/* entries, including ones for nodes that are no longer members. */
  readonly slaveDown: ReadonlyMap<string, Versioned<SlaveDownRecord>>;
  /** watch_down/<group> and watch_down/<group>__<kind> alerts. */
  readonly alerts: readonly AlertView[];
  /** Present-but-invalid records (never acted on). */
  readonly problems: readonly ViewProblem[];
  /** True when the record exists but failed validation (so "absent" must not be assumed). */
  readonly invalid: {
    readonly meta: boolean;
    readonly master: boolean;
    readonly route: boolean;
    readonly task: boolean;
    readonly white: boolean;
  };
}

export function member(view: GroupView, node: string): MemberView | undefined {
  return view.members.find((m) => m.node === node);
}

export function alertOf(view: GroupView, kind?: string): AlertView | undefined {
  return view.alerts.find((a) => a.nameKind === kind);
}

type Read<T> = { kind: 'absent' } | { kind: 'ok'; value: T; version: number } | { kind: 'invalid' };

async function readRecord<S extends z.ZodTypeAny>(
  zk: ZkReader,
  schema: S,
  path: string,
  problems: ViewProblem[],
): Promise<Read<z.output<S>>> {
  const nd = await zk.getOrNull(path);
  if (nd === null) return { kind: 'absent' };
  try {
    return { kind: 'ok', value: decodeRecord(schema, nd.data, path), version: nd.stat.version };
  } catch (err) {
    problems.push({ path, message: errorMessage(err) });
    return { kind: 'invalid' };
  }
}

const value = <T>(r: Read<T>): T | null => (r.kind === 'ok' ? r.value : null);
const versioned = <T>(r: Read<T>): Versioned<T> | null =>
  r.kind === 'ok' ? { record: r.value, version: r.version } : null;

/** Reads a consistent-enough snapshot of one group; ZooKeeper errors (timeouts, loss) propagate. */
export async function readGroupView(zk: ZkReader, paths: ZkPaths, group: string): Promise<GroupView> {
  const problems: ViewProblem[] = [];
  const readAt = Date.now();
  const [metaR, masterR, routeR, whiteR, taskR, slaveDownNames, alertNames] = await Promise.all([
    readRecord(zk, metaGroupSchema, paths.metaGroup(group), problems),
    readRecord(zk, masterSchema, paths.master(group), problems),
    readRecord(zk, haproxySchema, paths.haproxy(group), problems),
    readRecord(zk, whiteSchema, paths.white(group), problems),
    readRecord(zk, taskSchema, paths.task(group), problems),
    zk.childrenOrEmpty(paths.slaveDownDir(group)),
    zk.childrenOrEmpty(paths.dir('watch_down')),
  ]);
  const meta = value(metaR);
  if (meta !== null && meta.name !== group) {
    problems.push({
      path: paths.metaGroup(group),
      message: `record names group '${meta.name}', expected '${group}'`,
    });
  }
  const memberNodes = meta?.members ?? [];

  const slaveDownValid = slaveDownNames.filter((n) => {
    if (isNodeName(n)) return true;
    problems.push({ path: `${paths.slaveDownDir(group)}/${n}`, message: 'child name is not host:port' });
    return false;
  });
  const myAlerts = alertNames
    .map((name) => ({ name, parsed: parseWatchDownName(name) }))
    .filter((a) => a.parsed !== null && a.parsed.group === group);

  const [members, slaveDownRecs, alertRecs] = await Promise.all([
    Promise.all(
      memberNodes.map(async (node): Promise<MemberView> => {
        const [host, online, agent, rejoin] = await Promise.all([
          readRecord(zk, metaHostSchema, paths.metaHost(node), problems),
          readRecord(zk, onlineSchema, paths.online(node), problems),
          readRecord(zk, agentSchema, paths.agent(node), problems),
          readRecord(zk, rejoinSchema, paths.rejoin(node), problems),
        ]);
        const h = value(host);
        if (h !== null && h.group !== group)
          problems.push({
            path: paths.metaHost(node),
            message: `host belongs to group '${h.group}', not '${group}'`,
          });
        return {
          node,
          host: h,
          online: value(online),
          agent: value(agent),
          rejoin: versioned(rejoin),
          slaveDown: null,
        };
      }),
    ),
    Promise.all(
      slaveDownValid.map(
        async (n) => [n, await readRecord(zk, slaveDownSchema, paths.slaveDown(group, n), problems)] as const,
      ),
    ),
    Promise.all(
      myAlerts.map(async (a) => {
        const r = await readRecord(zk, alertSchema, `${paths.dir('watch_down')}/${a.name}`, problems);
        return r.kind === 'ok'
          ? ({
              name: a.name,
              nameKind: a.parsed?.kind,
              record: r.value,
              version: r.version,
            } satisfies AlertView)
          : null;
      }),
    ),
  ]);

  const slaveDown = new Map<string, Versioned<SlaveDownRecord>>();
  for (const [n, r] of slaveDownRecs) {
    const v = versioned(r);
    if (v !== null) slaveDown.set(n, v);
  }
  return {
    group,
    readAt,
    meta,
    members: members.map((m) => ({ ...m, slaveDown: slaveDown.get(m.node) ?? null })),
    master: versioned(masterR),
    route: versioned(routeR),
    white: value(whiteR),
    task: versioned(taskR),
    slaveDown,
    alerts: alertRecs.filter((a): a is AlertView => a !== null),
    problems,
    invalid: {
      meta: metaR.kind === 'invalid',
      master: masterR.kind === 'invalid',
      route: routeR.kind === 'invalid',
      task: taskR.kind === 'invalid',
      white: whiteR.kind === 'invalid',
    },
  };
}

/** Group names under meta_group/ (invalid names are skipped and reported). */
export async function listGroups(zk: ZkReader, paths: ZkPaths, problems?: ViewProblem[]): Promise<string[]> {
  const names = await zk.childrenOrEmpty(paths.dir('meta_group'));
  return names
    .filter((n) => {
      if (isGroupName(n)) return true;
      problems?.push({ path: `${paths.dir('meta_group')}/${n}`, message: 'invalid group name' });
      return false;
    })
    .sort();
}
