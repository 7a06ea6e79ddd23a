import type { NodePosition } from '../../core/candidate';
import type { AgentRecord, MetaHost, OnlineRecord, TaskRecord } from '../../core/records';
import { groupSettingsSchema, type GroupSettings } from '../../core/records';
import type { AlertView, GroupView, MemberView } from '../../core/view';

/** Small builders for GroupView values in pure unit tests (no servers). */
export const M = '10.0.0.1:3306';
export const A = '10.0.0.2:3306';
export const B = '10.0.0.3:3306';
export const C = '10.0.0.4:3306';

export interface MemberSpec {
  readonly node: string;
  readonly priority?: 0 | 1 | 2;
  readonly dc?: string;
  readonly online?: Partial<OnlineRecord> | null;
  readonly agent?: Partial<AgentRecord> | null;
  readonly noHost?: boolean;
  readonly rejoin?: boolean;
  readonly slaveDown?: { readonly since: number; readonly reason: string; readonly drained?: boolean } | null;
  /** meta_host.banned: banned after failovers at these epochs. */
  readonly banned?: readonly number[];
}

export interface ViewSpec {
  readonly master?: string | null;
  readonly epoch?: number;
  readonly masterSince?: number;
  readonly masterReason?: string;
  readonly members: readonly MemberSpec[];
  readonly read?: readonly string[];
  readonly write?: string | null;
  readonly routeEpoch?: number;
  readonly white?: boolean;
  readonly task?: Partial<TaskRecord> | null;
  readonly settings?: Partial<GroupSettings>;
  readonly alerts?: ReadonlyArray<{ kind?: string; detail?: Record<string, unknown>; at?: number }>;
  readonly now?: number;
}

export function online(role: 'master' | 'replica', over: Partial<OnlineRecord> = {}): OnlineRecord {
  return {
    v: 1,
    mysqldUp: true,
    role,
    readOnly: role !== 'master',
    gtidCurrent: '0-1-10',
    ...(role === 'replica'
      ? {
          ioRunning: true,
          sqlRunning: true,
          lagSeconds: 0,
          masterNode: M,
          gtidIo: '0-1-10',
          gtidSlave: '0-1-10',
        }
      : {}),
    at: 1000,
    ...over,
  };
}

export function view(spec: ViewSpec): GroupView {
  const masterNode = spec.master === undefined ? M : spec.master;
  const epoch = spec.epoch ?? 1;
  const members: MemberView[] = spec.members.map((m) => {
    const host: MetaHost | null = m.noHost
      ? null
      : {
          v: 1,
          group: 'g1',
          host: m.node.split(':')[0]!,
          port: Number(m.node.split(':')[1]),
          priority: m.priority ?? 1,
          ...(m.dc !== undefined ? { dc: m.dc } : {}),
          ...(m.banned !== undefined
            ? { banned: { at: 1, epochs: [...m.banned], windowMs: 3_600_000, by: 'server:s1' } }
            : {}),
        };
    const role = m.node === masterNode ? 'master' : 'replica';
    return {
      node: m.node,
      host,
      online: m.online === null ? null : online(role, m.online ?? {}),
      agent:
        m.agent === null || m.agent === undefined
          ? null
          : { v: 1, pid: 42, httpPort: 8008, binlogDir: '/b', at: 1000, ...m.agent },
      rejoin: m.rejoin
        ? {
            record: {
              v: 1,
              group: 'g1',
              newMaster: masterNode ?? M,
              epoch,
              promotedAt: 1,
              gtidAtPromotion: '',
            },
            version: 0,
          }
        : null,
      slaveDown: m.slaveDown ? { record: { v: 1, ...m.slaveDown }, version: 0 } : null,
    };
  });
  const slaveDown = new Map(
    members.filter((m) => m.slaveDown !== null).map((m) => [m.node, m.slaveDown!] as const),
  );
  const alerts: AlertView[] = (spec.alerts ?? []).map((a) => ({
    name: a.kind === undefined ? 'g1' : `g1__${a.kind}`,
    nameKind: a.kind,
    record: { v: 1, kind: a.kind ?? 'heartbeat-lost-mysql-alive', at: a.at ?? 1000, detail: a.detail ?? {} },
    version: 0,
  }));
  return {
    group: 'g1',
    readAt: spec.now ?? 10_000,
    meta: {
      v: 1,
      name: 'g1',
      flavor: 'mariadb',
      writePort: 4000,
      readPort: 4001,
      members: members.map((m) => m.node),
      settings: groupSettingsSchema.parse(spec.settings ?? {}),
    },
    members,
    master:
      masterNode === null
        ? null
        : {
            record: {
              v: 1,
              node: masterNode,
              epoch,
              since: spec.masterSince ?? 0,
              reason: spec.masterReason ?? 'add',
            },
            version: 3,
          },
    route: {
      record: {
        v: 1,
        epoch: spec.routeEpoch ?? epoch,
        write: spec.write === undefined ? masterNode : spec.write,
        read: [...(spec.read ?? members.filter((m) => m.node !== masterNode).map((m) => m.node))],
      },
      version: 5,
    },
    white: spec.white ? { v: 1, reason: 'maintenance', by: 'op', at: 1 } : null,
    task:
      spec.task === null || spec.task === undefined
        ? null
        : {
            record: {
              v: 1,
              id: 't1',
              kind: 'failover',
              step: 'fence',
              oldMaster: masterNode,
              candidate: null,
              startedAt: 1,
              worker: 's1',
              detail: {},
              ...spec.task,
            },
            version: 2,
          },
    slaveDown,
    alerts,
    problems: [],
    invalid: { meta: false, master: false, route: false, task: false, white: false },
  };
}

/** A reachable replica position: received (IO) and applied positions, replicating from `master`. */
export function pos(
  io: string,
  over: {
    slave?: string;
    binlog?: string;
    serverId?: number;
    master?: string | null;
    sql?: boolean;
    io_running?: boolean;
  } = {},
): NodePosition {
  const slave = over.slave ?? io;
  return {
    reachable: true,
    serverId: over.serverId ?? 99,
    readOnly: true,
    gtidBinlogPos: over.binlog ?? slave,
    gtidSlavePos: slave,
    replica:
      over.master === null
        ? null
        : {
            masterNode: over.master ?? M,
            ioRunning: over.io_running ?? false,
            sqlRunning: over.sql ?? true,
            gtidIoPos: io,
            lastSqlError: '',
          },
  };
}

export const unreachable = (error = 'connect ECONNREFUSED'): NodePosition => ({ reachable: false, error });
