import type { MasterRecord } from '../core/records';
import { liveStatus, type Health } from './health';

/**
 * What the agent's HTTP endpoints answer (design §4), pure: HAProxy's `option httpchk` asks
 * `GET /master` and `GET /replica`; monitoring scrapes `GET /metrics`.
 */
export interface AgentSnapshot {
  readonly node: string;
  readonly group: string | null;
  readonly health: Health;
  /** master/<group> as last seen; null when absent or not read yet. */
  readonly master: MasterRecord | null;
  /** From meta_group/<group>.settings; the default 30 until the record is read. */
  readonly maxReadLagSeconds: number;
  readonly zkConnected: boolean;
  readonly onlinePublished: boolean;
  readonly rejoinPending: boolean;
  /** mysqld is writable while ZooKeeper says it must not be (being fenced, or held: client/fence.ts decideStray). */
  readonly strayWritable: boolean;
  readonly counters: AgentCounters;
}

export interface AgentCounters {
  readonly checks: Readonly<Record<'ok' | 'refused' | 'dropped' | 'timeout' | 'error', number>>;
  readonly lastCheckMs: number;
  readonly onlineWrites: number;
  readonly selfFences: number;
  readonly failsafeHolds: number;
  /** Fences of a writable node that ZooKeeper says is not the master (decideStray). */
  readonly strayFences: number;
  readonly sessions: number;
  readonly expiries: number;
}

export interface EndpointAnswer {
  readonly status: 200 | 503;
  readonly body: string;
}

/** 200 only when this node is the master in master/<group> and its mysqld is alive and writable. */
export function masterCheck(s: AgentSnapshot): EndpointAnswer {
  const st = liveStatus(s.health);
  if (st === null) return { status: 503, body: `mysqld not healthy (${s.health.kind})\n` };
  if (s.master === null) return { status: 503, body: 'master record unknown\n' };
  if (s.master.node !== s.node) return { status: 503, body: `not the master (master is ${s.master.node})\n` };
  if (st.readOnly) return { status: 503, body: 'master but read_only=ON\n' };
  if (st.replica !== null && (st.replica.ioRunning || st.replica.sqlRunning))
    return { status: 503, body: 'master but replicating\n' };
  return { status: 200, body: `master epoch ${s.master.epoch}\n` };
}

/** 200 when replicating with both threads running and lag within the group's maxReadLagSeconds. */
export function replicaCheck(s: AgentSnapshot): EndpointAnswer {
  const st = liveStatus(s.health);
  if (st === null) return { status: 503, body: `mysqld not healthy (${s.health.kind})\n` };
  const r = st.replica;
  if (r === null) return { status: 503, body: 'not a replica\n' };
  if (!r.ioRunning || !r.sqlRunning)
    return { status: 503, body: `replication stopped (io=${r.ioRunning} sql=${r.sqlRunning})\n` };
  if (r.lagSeconds === null) return { status: 503, body: 'lag unknown\n' };
  if (r.lagSeconds > s.maxReadLagSeconds)
    return { status: 503, body: `lag ${r.lagSeconds}s > ${s.maxReadLagSeconds}s\n` };
  return { status: 200, body: `replica lag ${r.lagSeconds}s\n` };
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus text exposition (version 0.0.4), hand-written: a handful of gauges and counters. */
export function renderMetrics(s: AgentSnapshot): string {
  const labels = `node="${esc(s.node)}",group="${esc(s.group ?? '')}"`;
  const st = liveStatus(s.health);
  const lines: string[] = [];
  const metric = (
    name: string,
    type: 'gauge' | 'counter',
    help: string,
    values: ReadonlyArray<[string, number]>,
  ): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [extra, v] of values)
      lines.push(`${name}{${labels}${extra}} ${Number.isFinite(v) ? v : 'NaN'}`);
  };
  const b = (x: boolean): number => (x ? 1 : 0);
  metric('zkmha_client_mysqld_up', 'gauge', 'mysqld counts as alive (up, or suspect below failAfter)', [
    ['', b(st !== null)],
  ]);
  metric('zkmha_client_read_only', 'gauge', 'read_only of the local mysqld (NaN when unknown)', [
    ['', st === null ? NaN : b(st.readOnly)],
  ]);
  metric('zkmha_client_is_master', 'gauge', 'this node is the master in master/<group>', [
    ['', b(s.master?.node === s.node)],
  ]);
  metric('zkmha_client_replication_io_running', 'gauge', 'replication IO thread running', [
    ['', b(st?.replica?.ioRunning === true)],
  ]);
  metric('zkmha_client_replication_sql_running', 'gauge', 'replication SQL thread running', [
    ['', b(st?.replica?.sqlRunning === true)],
  ]);
  metric(
    'zkmha_client_replication_lag_seconds',
    'gauge',
    'Seconds_Behind_Master (NaN when unknown or not a replica)',
    [['', st?.replica?.lagSeconds ?? NaN]],
  );
  metric('zkmha_client_zk_connected', 'gauge', 'the agent is connected to ZooKeeper', [
    ['', b(s.zkConnected)],
  ]);
  metric('zkmha_client_online_published', 'gauge', 'online/<node> is published', [
    ['', b(s.onlinePublished)],
  ]);
  metric('zkmha_client_rejoin_pending', 'gauge', 'rejoin/<node> exists, online/ is held back', [
    ['', b(s.rejoinPending)],
  ]);
  metric(
    'zkmha_client_stray_writable',
    'gauge',
    'mysqld is writable but master/<group> names another node or rejoin/<node> exists',
    [['', b(s.strayWritable)]],
  );
  metric('zkmha_client_last_check_seconds', 'gauge', 'duration of the last health check', [
    ['', s.counters.lastCheckMs / 1000],
  ]);
  metric(
    'zkmha_client_checks_total',
    'counter',
    'health checks by outcome',
    Object.entries(s.counters.checks).map(([k, v]) => [`,result="${k}"`, v] as [string, number]),
  );
  metric('zkmha_client_online_writes_total', 'counter', 'writes of online/<node> (create, update, delete)', [
    ['', s.counters.onlineWrites],
  ]);
  metric(
    'zkmha_client_self_fence_total',
    'counter',
    'times the agent fenced its mysqld (read_only=ON, connections killed)',
    [['', s.counters.selfFences]],
  );
  metric(
    'zkmha_client_failsafe_total',
    'counter',
    'times fencing was skipped because every replica was attached',
    [['', s.counters.failsafeHolds]],
  );
  metric(
    'zkmha_client_stray_fence_total',
    'counter',
    'times the agent fenced its mysqld for being writable while not the master in ZooKeeper',
    [['', s.counters.strayFences]],
  );
  metric('zkmha_client_zk_sessions_total', 'counter', 'ZooKeeper sessions established', [
    ['', s.counters.sessions],
  ]);
  metric('zkmha_client_zk_expiries_total', 'counter', 'ZooKeeper sessions lost (expired)', [
    ['', s.counters.expiries],
  ]);
  return `${lines.join('\n')}\n`;
}
