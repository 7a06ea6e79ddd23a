import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { masterCheck, replicaCheck, type AgentSnapshot } from '../../client/endpoints';
import { onlineChanged, type MysqlStatus } from '../../client/health';
import { parseNotifyArgs, wsrepNotifyEvent } from '../../client/notify';
import { isZkmhaError } from '../../core/errors';
import { galeraStateFrom, isRoutable } from '../../core/mysql/galera';
import { onlineSchema, type GaleraOnline, type OnlineRecord } from '../../core/records';

const UUID = '2810218a-f235-11f1-a02c-26887f911c77';

describe('galeraStateFrom', () => {
  const synced = {
    wsrep_cluster_status: 'Primary',
    wsrep_local_state: '4',
    wsrep_local_state_comment: 'Synced',
    wsrep_ready: 'ON',
    wsrep_connected: 'ON',
    wsrep_cluster_size: '3',
    wsrep_cluster_state_uuid: UUID.toUpperCase(),
    wsrep_last_committed: '17',
    wsrep_local_index: '1',
  };
  const cases: ReadonlyArray<
    [string, Record<string, string>, Partial<ReturnType<typeof galeraStateFrom>>, boolean]
  > = [
    [
      'a Synced Primary node',
      synced,
      {
        clusterStatus: 'Primary',
        localState: 4,
        clusterSize: 3,
        clusterStateUuid: UUID,
        lastCommitted: 17,
        localIndex: 1,
      },
      true,
    ],
    [
      'non-Primary (measured: state 0, Initialized)',
      {
        ...synced,
        wsrep_cluster_status: 'non-Primary',
        wsrep_local_state: '0',
        wsrep_local_state_comment: 'Initialized',
        wsrep_ready: 'OFF',
        wsrep_cluster_size: '1',
      },
      { clusterStatus: 'non-Primary', localState: 0, ready: false },
      false,
    ],
    [
      'a donor',
      { ...synced, wsrep_local_state: '2', wsrep_local_state_comment: 'Donor/Desynced' },
      { localState: 2 },
      false,
    ],
    [
      'a joiner',
      { ...synced, wsrep_local_state: '1', wsrep_local_state_comment: 'Joining' },
      { localState: 1 },
      false,
    ],
    ['Synced but not ready', { ...synced, wsrep_ready: 'OFF' }, { ready: false }, false],
    [
      'an unknown cluster status is not Primary',
      { ...synced, wsrep_cluster_status: 'primary' },
      { clusterStatus: 'Disconnected' },
      false,
    ],
    [
      'no provider: nothing reported',
      {},
      {
        clusterStatus: 'Disconnected',
        localState: 0,
        clusterSize: 0,
        clusterStateUuid: '',
        lastCommitted: -1,
        localIndex: -1,
      },
      false,
    ],
    [
      'the nil UUID and garbage numbers',
      {
        ...synced,
        wsrep_cluster_state_uuid: '00000000-0000-0000-0000-000000000000',
        wsrep_last_committed: 'x',
        wsrep_cluster_size: '-4',
      },
      { clusterStateUuid: '', lastCommitted: -1, clusterSize: 0 },
      true,
    ],
  ];
  for (const [name, vars, want, routable] of cases)
    it(name, () => {
      const g = galeraStateFrom(vars);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(g[k as keyof typeof g], v, k);
      assert.equal(isRoutable(g), routable);
    });
});

describe('mha client notify arguments', () => {
  it('parses what mariadbd passes (view change and status change)', () => {
    const a = parseNotifyArgs([
      '--agent',
      '127.0.0.1:8008',
      '--status',
      'connected',
      '--uuid',
      UUID,
      '--primary',
      'no',
      '--index',
      '0',
      '--members',
      `${UUID}/n0/127.0.0.1:3306`,
    ]);
    assert.deepEqual(a.agent, { host: '127.0.0.1', port: 8008 });
    assert.deepEqual(a.event, {
      status: 'connected',
      uuid: UUID,
      primary: 'no',
      index: '0',
      members: `${UUID}/n0/127.0.0.1:3306`,
    });
    assert.deepEqual(parseNotifyArgs(['--agent=localhost:1', '--status=synced']).event, { status: 'synced' });
  });
  const bad: ReadonlyArray<[string, string[], RegExp]> = [
    ['no --agent', ['--status', 'synced'], /--agent .* is required/],
    ['a bad agent', ['--agent', 'x'], /--agent must be host:port/],
    ['an unknown option', ['--agent', 'h:1', '--evil', '1'], /unknown option --evil/],
    ['a positional argument', ['--agent', 'h:1', 'rm'], /unexpected argument/],
    ['a bad uuid', ['--agent', 'h:1', '--uuid', 'nope'], /invalid --uuid/],
    ['a bad primary', ['--agent', 'h:1', '--primary', 'maybe'], /invalid --primary/],
    ['a status with a shell character', ['--agent', 'h:1', '--status', 'syn;ced'], /invalid --status/],
    ['a missing value', ['--agent', 'h:1', '--index'], /--index needs a value/],
  ];
  for (const [name, argv, re] of bad)
    it(`refuses ${name} with one line`, () => {
      assert.throws(
        () => parseNotifyArgs(argv),
        (e: unknown) =>
          isZkmhaError(e, 'BAD_USAGE') &&
          re.test((e as Error).message) &&
          !(e as Error).message.includes('\n'),
      );
    });
  it('the agent side accepts only the known fields, once each', () => {
    assert.deepEqual(wsrepNotifyEvent(new URLSearchParams({ status: 'donor', primary: 'yes' })), {
      status: 'donor',
      primary: 'yes',
    });
    assert.equal(wsrepNotifyEvent(new URLSearchParams('status=synced&status=donor')), null);
    assert.equal(wsrepNotifyEvent(new URLSearchParams('other=1')), null);
    assert.equal(wsrepNotifyEvent(new URLSearchParams('index=abc')), null);
  });
});

describe('online.galera', () => {
  const base: OnlineRecord = {
    v: 1,
    mysqldUp: true,
    role: 'master',
    readOnly: false,
    gtidCurrent: '',
    galera: {
      clusterStatus: 'Primary',
      localState: 4,
      localStateComment: 'Synced',
      ready: true,
      clusterSize: 3,
      stateUuid: UUID,
      lastCommitted: 5,
    },
    at: 1,
  };
  it('is validated (additive: a record without it stays valid)', () => {
    assert.ok(onlineSchema.safeParse(base).success);
    const { galera: _g, ...plain } = base;
    assert.ok(onlineSchema.safeParse(plain).success);
    assert.equal(
      onlineSchema.safeParse({ ...base, galera: { ...base.galera, clusterStatus: 'primary' } }).success,
      false,
    );
    assert.equal(
      onlineSchema.safeParse({ ...base, galera: { ...base.galera, stateUuid: 'x' } }).success,
      false,
    );
    assert.equal(onlineSchema.safeParse({ ...base, galera: { ...base.galera, extra: 1 } }).success, false);
  });
  it('is republished on a routing-relevant change, not for every commit', () => {
    const g = base.galera!;
    assert.equal(onlineChanged(base, { ...base, galera: { ...g, lastCommitted: 99 } }, 30), false);
    for (const change of [
      { clusterStatus: 'non-Primary' as const },
      { localState: 2 },
      { ready: false },
      { clusterSize: 2 },
      { stateUuid: '' },
    ])
      assert.equal(
        onlineChanged(base, { ...base, galera: { ...g, ...change } }, 30),
        true,
        JSON.stringify(change),
      );
    const { galera: _g, ...plain } = base;
    assert.equal(onlineChanged(plain, base, 30), true);
  });
});

describe('agent checks of a Galera node (HAProxy httpchk)', () => {
  const SELF = '127.0.0.1:3306';
  const g: GaleraOnline = {
    clusterStatus: 'Primary',
    localState: 4,
    localStateComment: 'Synced',
    ready: true,
    clusterSize: 3,
    stateUuid: UUID,
    lastCommitted: 5,
  };
  const status = (over: Partial<GaleraOnline> = {}): MysqlStatus => ({
    role: 'master',
    readOnly: false,
    gtidCurrent: '',
    gtidSlave: '',
    replica: null,
    galera: { ...g, ...over },
  });
  const snap = (s: MysqlStatus, master = SELF): AgentSnapshot => ({
    node: SELF,
    group: 'gal',
    health: { kind: 'up', since: 0, at: 0, status: s },
    master: { v: 1, node: master, epoch: 2, since: 0, reason: 'galera writer: chosen' },
    masterSeenAt: 0,
    statusAt: 0,
    maxReadLagSeconds: 30,
    zkConnected: true,
    onlinePublished: true,
    rejoinPending: false,
    strayWritable: false,
    counters: {
      checks: { ok: 1, refused: 0, dropped: 0, timeout: 0, error: 0 },
      lastCheckMs: 1,
      onlineWrites: 1,
      selfFences: 0,
      failsafeHolds: 0,
      strayFences: 0,
      sessions: 1,
      expiries: 0,
    },
  });
  const table: ReadonlyArray<[string, Partial<GaleraOnline>, 200 | 503]> = [
    ['Synced and Primary', {}, 200],
    ['a donor', { localState: 2, localStateComment: 'Donor/Desynced' }, 503],
    ['a joiner', { localState: 1, localStateComment: 'Joining' }, 503],
    ['non-Primary', { clusterStatus: 'non-Primary', localState: 0, ready: false }, 503],
    ['not ready', { ready: false }, 503],
  ];
  for (const [name, over, code] of table)
    it(`${name}: /replica and the writer's /master answer ${code}`, () => {
      // Galera members replicate by wsrep, not by a replica thread: /replica follows the wsrep state.
      assert.equal(replicaCheck(snap(status(over))).status, code);
      assert.equal(masterCheck(snap(status(over)), { epoch: 2, node: SELF }).status, code);
    });
  it('/master is 503 on a Synced node that master/ does not name', () => {
    assert.equal(masterCheck(snap(status(), '127.0.0.1:3307'), { epoch: 2 }).status, 503);
  });
});
