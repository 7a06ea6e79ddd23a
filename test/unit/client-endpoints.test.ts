import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { masterCheck, renderMetrics, replicaCheck, type AgentSnapshot } from '../../client/endpoints';
import type { Health, MysqlStatus } from '../../client/health';

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

describe('client GET /replica', () => {
  const r = (p: Partial<NonNullable<MysqlStatus['replica']>>): Health =>
    up({ ...REPLICA, replica: { ...REPLICA.replica!, ...p } });
  const table: Array<[string, Partial<AgentSnapshot>, 200 | 503]> = [
    ['replicating, lag 2 ≤ 30 → 200', { health: r({}) }, 200],
    ['lag exactly at the limit → 200', { health: r({ lagSeconds: 30 }) }, 200],
    ['lag beyond the limit → 503', { health: r({ lagSeconds: 31 }) }, 503],
    ['lag limit from the group settings', { health: r({ lagSeconds: 5 }), maxReadLagSeconds: 4 }, 503],
    ['IO thread stopped → 503', { health: r({ ioRunning: false }) }, 503],
    ['SQL thread stopped → 503', { health: r({ sqlRunning: false }) }, 503],
    ['lag unknown → 503', { health: r({ lagSeconds: null }) }, 503],
    ['a master → 503', { health: up(MASTER) }, 503],
    ['mysqld down → 503', { health: { kind: 'down', since: 0, reason: 'timeouts', message: 'x' } }, 503],
  ];
  for (const [name, patch, status] of table)
    it(name, () => assert.equal(replicaCheck({ ...base, ...patch }).status, status));
});

describe('client GET /metrics', () => {
  it('renders Prometheus text with labels, values and types', () => {
    const text = renderMetrics({ ...base, health: up(REPLICA), master: { ...base.master!, node: OTHER } });
    assert.match(text, /^# TYPE zkmha_client_mysqld_up gauge$/m);
    assert.match(text, /^zkmha_client_mysqld_up\{node="127\.0\.0\.1:3306",group="g1"\} 1$/m);
    assert.match(text, /^zkmha_client_is_master\{[^}]*\} 0$/m);
    assert.match(text, /^zkmha_client_replication_lag_seconds\{[^}]*\} 2$/m);
    assert.match(text, /^zkmha_client_checks_total\{[^}]*,result="timeout"\} 2$/m);
    assert.match(text, /^zkmha_client_last_check_seconds\{[^}]*\} 0\.004$/m);
    // every sample line is `name{labels} number`
    for (const line of text.trim().split('\n'))
      if (!line.startsWith('#')) assert.match(line, /^[a-z_]+\{[^}]*\} (-?[0-9.e+-]+|NaN)$/);
  });

  it('exposes a writable node that is not the master and how often it was fenced', () => {
    const quiet = renderMetrics(base);
    assert.match(quiet, /^zkmha_client_stray_writable\{[^}]*\} 0$/m);
    assert.match(quiet, /^zkmha_client_stray_fence_total\{[^}]*\} 0$/m);
    const text = renderMetrics({
      ...base,
      master: { ...base.master!, node: OTHER },
      strayWritable: true,
      counters: { ...base.counters, strayFences: 2 },
    });
    assert.match(text, /^# TYPE zkmha_client_stray_fence_total counter$/m);
    assert.match(text, /^zkmha_client_stray_writable\{[^}]*\} 1$/m);
    assert.match(text, /^zkmha_client_stray_fence_total\{[^}]*\} 2$/m);
  });

  it('shows unknown values as NaN when mysqld is down', () => {
    const text = renderMetrics({
      ...base,
      health: { kind: 'down', since: 0, reason: 'refused', message: 'x' },
    });
    assert.match(text, /^zkmha_client_read_only\{[^}]*\} NaN$/m);
    assert.match(text, /^zkmha_client_mysqld_up\{[^}]*\} 0$/m);
  });
});
