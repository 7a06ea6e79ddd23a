import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createRegistry, FAST_BUCKETS } from '../core/metrics';
import type { AgentSnapshot } from './endpoints';
import { liveStatus } from './health';

/**
 * The heartbeat client's `/metrics` (prom-client). Gauges and counters are read from the agent's
 * snapshot at scrape time, so the agent keeps one set of counters (its snapshot) and the exposition
 * cannot drift from it; only latencies are observed as they happen. Every series carries `node` and
 * `group` ('' while the node belongs to none).
 */
export interface ClientMetrics {
  readonly registry: Registry;
  /** A finished mysqld check (seconds). */
  observeCheck(seconds: number, result: string): void;
  /** An answered HAProxy check (`/master`, `/replica`), including any wait for a fresh state. */
  observeEndpoint(endpoint: 'master' | 'replica', status: number, seconds: number): void;
}

type Labels = { node: string; group: string };

export function createClientMetrics(snapshot: () => AgentSnapshot): ClientMetrics {
  const registry = createRegistry('client');
  const labels = (s: AgentSnapshot): Labels => ({ node: s.node, group: s.group ?? '' });
  const gauge = (name: string, help: string, value: (s: AgentSnapshot) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['node', 'group'],
      registers: [registry],
      collect() {
        const s = snapshot();
        this.reset();
        this.set(labels(s), value(s));
      },
    });
  };
  const counter = (name: string, help: string, value: (s: AgentSnapshot) => number): void => {
    new Counter({
      name,
      help,
      labelNames: ['node', 'group'],
      registers: [registry],
      collect() {
        const s = snapshot();
        this.reset();
        this.inc(labels(s), value(s));
      },
    });
  };
  const b = (x: boolean): number => (x ? 1 : 0);
  const st = (s: AgentSnapshot) => liveStatus(s.health);

  gauge('zkmha_client_mysqld_up', 'mysqld counts as alive (up, or suspect below failAfter)', (s) =>
    b(st(s) !== null),
  );
  gauge('zkmha_client_read_only', 'read_only of the local mysqld (NaN when unknown)', (s) => {
    const x = st(s);
    return x === null ? NaN : b(x.readOnly);
  });
  gauge('zkmha_client_is_master', 'this node is the master in master/<group>', (s) =>
    b(s.master?.node === s.node),
  );
  gauge(
    'zkmha_client_master_epoch',
    'epoch of master/<group> as this agent last saw it (NaN when unknown)',
    (s) => (s.master === null ? NaN : s.master.epoch),
  );
  gauge('zkmha_client_replication_io_running', 'replication IO thread running', (s) =>
    b(st(s)?.replica?.ioRunning === true),
  );
  gauge(
    'zkmha_client_replication_io_connecting',
    'replication IO thread retrying its connection to the master',
    (s) => b(st(s)?.replica?.ioConnecting === true),
  );
  gauge('zkmha_client_replication_sql_running', 'replication SQL thread running', (s) =>
    b(st(s)?.replica?.sqlRunning === true),
  );
  gauge(
    'zkmha_client_replication_lag_seconds',
    'Seconds_Behind_Master, or its bound while the master is unreachable (NaN when unknown or not a replica)',
    (s) => st(s)?.replica?.lagSeconds ?? NaN,
  );
  gauge('zkmha_client_semi_sync_master_enabled', 'rpl_semi_sync_master_enabled (NaN when unknown)', (s) => {
    const x = st(s)?.semiSync;
    return x === undefined ? NaN : b(x.masterEnabled);
  });
  gauge(
    'zkmha_client_semi_sync_master_active',
    'Rpl_semi_sync_master_status: semi-sync in effect, 0 after a fall-back to async (NaN when unknown)',
    (s) => {
      const x = st(s)?.semiSync;
      return x === undefined ? NaN : b(x.masterActive);
    },
  );
  gauge(
    'zkmha_client_semi_sync_master_clients',
    'Rpl_semi_sync_master_clients: replicas connected as semi-sync acknowledgers (NaN when unknown)',
    (s) => st(s)?.semiSync?.masterClients ?? NaN,
  );
  gauge('zkmha_client_semi_sync_slave_enabled', 'rpl_semi_sync_slave_enabled (NaN when unknown)', (s) => {
    const x = st(s)?.semiSync;
    return x === undefined ? NaN : b(x.slaveEnabled);
  });
  gauge('zkmha_client_zk_connected', 'the agent is connected to ZooKeeper', (s) => b(s.zkConnected));
  gauge('zkmha_client_online_published', 'online/<node> is published', (s) => b(s.onlinePublished));
  gauge('zkmha_client_rejoin_pending', 'rejoin/<node> exists, online/ is held back', (s) =>
    b(s.rejoinPending),
  );
  gauge(
    'zkmha_client_stray_writable',
    'mysqld is writable but master/<group> names another node or rejoin/<node> exists',
    (s) => b(s.strayWritable),
  );
  gauge(
    'zkmha_client_last_check_seconds',
    'duration of the last mysqld check',
    (s) => s.counters.lastCheckMs / 1000,
  );

  new Counter({
    name: 'zkmha_client_checks_total',
    help: 'mysqld checks by outcome',
    labelNames: ['node', 'group', 'result'],
    registers: [registry],
    collect() {
      const s = snapshot();
      this.reset();
      for (const [result, v] of Object.entries(s.counters.checks)) this.inc({ ...labels(s), result }, v);
    },
  });
  counter(
    'zkmha_client_online_writes_total',
    'writes of online/<node> (create, update, delete)',
    (s) => s.counters.onlineWrites,
  );
  counter(
    'zkmha_client_self_fence_total',
    'times the agent fenced its mysqld (read_only=ON, connections killed)',
    (s) => s.counters.selfFences,
  );
  counter(
    'zkmha_client_failsafe_total',
    'times fencing was skipped because every replica was attached',
    (s) => s.counters.failsafeHolds,
  );
  counter(
    'zkmha_client_stray_fence_total',
    'times the agent fenced its mysqld for being writable while not the master in ZooKeeper',
    (s) => s.counters.strayFences,
  );
  counter('zkmha_client_zk_sessions_total', 'ZooKeeper sessions established', (s) => s.counters.sessions);
  counter('zkmha_client_zk_expiries_total', 'ZooKeeper sessions lost (expired)', (s) => s.counters.expiries);

  const checkSeconds = new Histogram({
    name: 'zkmha_client_check_duration_seconds',
    help: 'duration of the checks of the local mysqld, by outcome',
    labelNames: ['node', 'group', 'result'],
    buckets: [...FAST_BUCKETS],
    registers: [registry],
  });
  const endpointSeconds = new Histogram({
    name: 'zkmha_client_endpoint_duration_seconds',
    help: "time to answer HAProxy's checks (/master, /replica), waits for a fresh master/ or mysqld check included",
    labelNames: ['node', 'group', 'endpoint', 'code'],
    buckets: [...FAST_BUCKETS],
    registers: [registry],
  });
  return {
    registry,
    observeCheck(seconds, result) {
      checkSeconds.observe({ ...labels(snapshot()), result }, seconds);
    },
    observeEndpoint(endpoint, status, seconds) {
      endpointSeconds.observe({ ...labels(snapshot()), endpoint, code: String(status) }, seconds);
    },
  };
}
