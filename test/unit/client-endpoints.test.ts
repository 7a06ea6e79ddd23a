import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  masterCheck,
  masterExpectation,
  replicaCheck,
  replicaMaxLag,
  type AgentSnapshot,
  type MasterExpectation,
} from '../../client/endpoints';
import type { Health, MysqlStatus } from '../../client/health';
import { createClientMetrics } from '../../client/metrics';
import { parseMetrics, value } from '../env/prom';

const SELF = '127.0.0.1:3306';
const OTHER = '127.0.0.1:3307';
const MASTER: MysqlStatus = {
  role: 'master',
  readOnly: false,
  gtidCurrent: '0-1-1',
  gtidSlave: '',
  replica: null,
};
const REPLICA: MysqlStatus = {
  role: 'replica',
  readOnly: true,
  gtidCurrent: '0-1-1',
  gtidSlave: '0-1-1',
  replica: { masterNode: OTHER, ioRunning: true, sqlRunning: true, lagSeconds: 2, gtidIo: '0-1-1' },
};
const up = (status: MysqlStatus): Health => ({ kind: 'up', since: 0, at: 0, status });

const base: AgentSnapshot = {
  node: SELF,
  group: 'g1',
  health: up(MASTER),
  master: { v: 1, node: SELF, epoch: 4, since: 0, reason: 'test' },
  masterSeenAt: 0,
  statusAt: 0,
  maxReadLagSeconds: 30,
  zkConnected: true,
  onlinePublished: true,
  rejoinPending: false,
  strayWritable: false,
  counters: {
    checks: { ok: 3, refused: 1, dropped: 0, timeout: 2, error: 0 },
    lastCheckMs: 4,
    onlineWrites: 2,
    selfFences: 0,
    failsafeHolds: 0,
    strayFences: 0,
    sessions: 1,
    expiries: 0,
  },
};

describe('client GET /master', () => {
  const table: Array<[string, Partial<AgentSnapshot>, 200 | 503]> = [
    ['master record names us, writable → 200', {}, 200],
    ['master record names another node → 503', { master: { ...base.master!, node: OTHER } }, 503],
    ['master record unknown → 503', { master: null }, 503],
    ['read_only=ON (fenced) → 503', { health: up({ ...MASTER, readOnly: true }) }, 503],
    ['mysqld down → 503', { health: { kind: 'down', since: 0, reason: 'refused', message: 'x' } }, 503],
    [
      'suspect with last good status → 200',
      {
        health: { kind: 'suspect', since: 0, failures: 1, status: MASTER, statusAt: 0, at: 0, message: 't' },
      },
      200,
    ],
    ['writable but replicating → 503', { health: up({ ...REPLICA, readOnly: false }) }, 503],
  ];
  for (const [name, patch, status] of table)
    it(name, () => assert.equal(masterCheck({ ...base, ...patch }).status, status));
});

describe('client GET /master?epoch=E&node=N: the epoch the router configured as a fencing token', () => {
  const promoting: Partial<AgentSnapshot> = { health: up(REPLICA), masterSeenAt: 10, statusAt: 5 };
  const table: Array<[string, Partial<AgentSnapshot>, MasterExpectation, 200 | 503, boolean]> = [
    ['the epoch the router applied is the current one → 200', {}, { epoch: 4 }, 200, false],
    ['a router on an older epoch (cut off from ZooKeeper) → 503, final', {}, { epoch: 3 }, 503, false],
    ['an epoch this agent has not seen yet → 503, worth waiting for', {}, { epoch: 5 }, 503, true],
    ['no master record yet, epoch asked → 503, worth waiting for', { master: null }, { epoch: 4 }, 503, true],
    ['the check reached the agent of another node → 503', {}, { epoch: 4, node: OTHER }, 503, false],
    ['our own node → 200', {}, { epoch: 4, node: SELF }, 200, false],
    [
      'named master, but the last mysqld check predates the promotion → 503, worth waiting for',
      promoting,
      { epoch: 4 },
      503,
      true,
    ],
    [
      'named master, read-only in a check made after the record → 503, final',
      { ...promoting, statusAt: 11 },
      { epoch: 4 },
      503,
      false,
    ],
    [
      'a newer epoch naming another node → 503, final',
      { master: { ...base.master!, node: OTHER, epoch: 5 } },
      { epoch: 4 },
      503,
      false,
    ],
  ];
  for (const [name, patch, want, status, retry] of table)
    it(name, () => {
      const a = masterCheck({ ...base, ...patch }, want);
      assert.equal(a.status, status, a.body);
      assert.equal(a.retry === true, retry, a.body);
    });

  it('parses the query; a malformed one is refused', () => {
    assert.deepEqual(masterExpectation(new URLSearchParams('epoch=7&node=10.0.0.5:3306')), {
      epoch: 7,
      node: '10.0.0.5:3306',
    });
    assert.deepEqual(masterExpectation(new URLSearchParams('')), {});
    assert.equal(masterExpectation(new URLSearchParams('epoch=-1')), null);
    assert.equal(masterExpectation(new URLSearchParams('epoch=7x')), null);
  });
});

describe('client GET /replica', () => {
  const r = (p: Partial<NonNullable<MysqlStatus['replica']>>): Health =>
    up({ ...REPLICA, replica: { ...REPLICA.replica!, ...p } });
  const table: Array<[string, Partial<AgentSnapshot>, 200 | 503]> = [
    ['replicating, lag 2 ≤ 30 → 200', { health: r({}) }, 200],
    ['lag exactly at the limit → 200', { health: r({ lagSeconds: 30 }) }, 200],
    ['lag beyond the limit → 503', { health: r({ lagSeconds: 31 }) }, 503],
    ['lag limit from the group settings', { health: r({ lagSeconds: 5 }), maxReadLagSeconds: 4 }, 503],
    ['IO thread stopped → 503', { health: r({ ioRunning: false }) }, 503],
    [
      'IO thread retrying a dead master, lag bound 3 s → 200 (reads go on during a host death)',
      { health: r({ ioRunning: false, ioConnecting: true, lagSeconds: 3 }) },
      200,
    ],
    [
      'IO thread retrying for longer than the limit → 503',
      { health: r({ ioRunning: false, ioConnecting: true, lagSeconds: 31 }) },
      503,
    ],
    ['SQL thread stopped → 503', { health: r({ sqlRunning: false }) }, 503],
    ['lag unknown → 503', { health: r({ lagSeconds: null }) }, 503],
    [
      'lag 2 s but 4,000 received transactions waiting at 100/s (~40 s) → 503',
      {
        health: up({
          ...REPLICA,
          gtidSlave: '0-1-1000',
          replica: {
            ...REPLICA.replica!,
            gtidIo: '0-1-5000',
            applyRate: { applied: 1000, at: 0, rate: 100 },
          },
        }),
      },
      503,
    ],
    [
      'a backlog applied within the limit (2,000 at 100/s: 20 s) → 200',
      {
        health: up({
          ...REPLICA,
          gtidSlave: '0-1-1000',
          replica: {
            ...REPLICA.replica!,
            gtidIo: '0-1-3000',
            applyRate: { applied: 1000, at: 0, rate: 100 },
          },
        }),
      },
      200,
    ],
    ['a master → 503', { health: up(MASTER) }, 503],
    ['mysqld down → 503', { health: { kind: 'down', since: 0, reason: 'timeouts', message: 'x' } }, 503],
  ];
  for (const [name, patch, status] of table)
    it(name, () => assert.equal(replicaCheck({ ...base, ...patch }).status, status));

  it('max_lag from the check overrides the group setting', () => {
    assert.equal(replicaCheck({ ...base, health: r({ lagSeconds: 5 }) }, 4).status, 503);
    assert.equal(
      replicaCheck({ ...base, health: r({ lagSeconds: 5 }), maxReadLagSeconds: 4 }, 10).status,
      200,
    );
    assert.equal(replicaMaxLag(new URLSearchParams('max_lag=10')), 10);
    assert.equal(replicaMaxLag(new URLSearchParams('')), undefined);
    assert.equal(replicaMaxLag(new URLSearchParams('max_lag=ten')), null);
  });
});

async function renderMetrics(s: AgentSnapshot): Promise<string> {
  return createClientMetrics(() => s).registry.metrics();
}

describe('client GET /metrics', () => {
  it('parses as Prometheus text with the snapshot values', async () => {
    const f = parseMetrics(await renderMetrics({ ...base, health: up(REPLICA) }));
    const l = { node: SELF, group: 'g1' };
    assert.equal(value(f, 'zkmha_client_mysqld_up', 'GAUGE', l), 1);
    assert.equal(value(f, 'zkmha_client_master_epoch', 'GAUGE', l), 4);
    assert.equal(value(f, 'zkmha_client_replication_lag_seconds', 'GAUGE', l), 2);
    assert.equal(value(f, 'zkmha_client_checks_total', 'COUNTER', { ...l, result: 'timeout' }), 2);
    assert.equal(value(f, 'zkmha_client_online_writes_total', 'COUNTER', l), 2);
    assert.ok(Number.isNaN(value(f, 'zkmha_client_semi_sync_master_active', 'GAUGE', l)));
  });
  it('renders Prometheus text with labels, values and types', async () => {
    const text = await renderMetrics({
      ...base,
      health: up(REPLICA),
      master: { ...base.master!, node: OTHER },
    });
    assert.match(text, /^# TYPE zkmha_client_mysqld_up gauge$/m);
    assert.match(text, /^zkmha_client_mysqld_up\{node="127\.0\.0\.1:3306",group="g1"\} 1$/m);
    assert.match(text, /^zkmha_client_is_master\{[^}]*\} 0$/m);
    assert.match(text, /^zkmha_client_replication_lag_seconds\{[^}]*\} 2$/m);
    assert.match(text, /^zkmha_client_checks_total\{[^}]*,result="timeout"\} 2$/m);
    assert.match(text, /^zkmha_client_last_check_seconds\{[^}]*\} 0\.004$/m);
    // every sample line of ours is `name{labels} number`
    for (const line of text.trim().split('\n'))
      if (
        line.startsWith('zkmha_client_') &&
        !line.startsWith('zkmha_client_process') &&
        !line.startsWith('zkmha_client_nodejs')
      )
        assert.match(line, /^[a-z_]+\{[^}]*\} (-?[0-9.e+-]+|NaN)$/i);
  });

  it('exposes a writable node that is not the master and how often it was fenced', async () => {
    const quiet = await renderMetrics(base);
    assert.match(quiet, /^zkmha_client_stray_writable\{[^}]*\} 0$/m);
    assert.match(quiet, /^zkmha_client_stray_fence_total\{[^}]*\} 0$/m);
    const text = await renderMetrics({
      ...base,
      master: { ...base.master!, node: OTHER },
      strayWritable: true,
      counters: { ...base.counters, strayFences: 2 },
    });
    assert.match(text, /^# TYPE zkmha_client_stray_fence_total counter$/m);
    assert.match(text, /^zkmha_client_stray_writable\{[^}]*\} 1$/m);
    assert.match(text, /^zkmha_client_stray_fence_total\{[^}]*\} 2$/m);
  });

  it('shows unknown values as NaN when mysqld is down', async () => {
    const text = await renderMetrics({
      ...base,
      health: { kind: 'down', since: 0, reason: 'refused', message: 'x' },
    });
    assert.match(text, /^zkmha_client_read_only\{[^}]*\} NaN$/im);
    assert.match(text, /^zkmha_client_mysqld_up\{[^}]*\} 0$/m);
  });
});
