import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  boundLag,
  decideHealth,
  desiredOnline,
  lagBucket,
  onlineAction,
  onlineRecordFor,
  reportsMysqldDown,
  unansweredMs,
  type Health,
  type MysqlStatus,
  type Observation,
} from '../../client/health';
import { onlineSchema } from '../../core/records';

const MASTER: MysqlStatus = {
  role: 'master',
  readOnly: false,
  gtidCurrent: '0-1-10',
  gtidSlave: '',
  replica: null,
};
const REPLICA: MysqlStatus = {
  role: 'replica',
  readOnly: true,
  gtidCurrent: '0-1-10',
  gtidSlave: '0-1-10',
  replica: {
    masterNode: '127.0.0.1:3306',
    ioRunning: true,
    sqlRunning: true,
    lagSeconds: 0,
    gtidIo: '0-1-10',
  },
};

const ok = (at: number, status: MysqlStatus = MASTER): Observation => ({ kind: 'ok', at, status });
const fail = (kind: 'refused' | 'dropped' | 'timeout' | 'error', at: number): Observation => ({
  kind,
  at,
  message: kind,
});

const UP: Health = { kind: 'up', since: 0, status: MASTER, at: 0 };
const SUSPECT1: Health = {
  kind: 'suspect',
  since: 10,
  failures: 1,
  status: MASTER,
  statusAt: 0,
  at: 10,
  message: 'timeout',
};
const DOWN: Health = { kind: 'down', since: 5, reason: 'refused', message: 'refused' };

describe('client decideHealth (failAfter 3)', () => {
  const table: Array<[string, Health, Observation, Partial<Record<string, unknown>>]> = [
    ['first good check → up', { kind: 'starting' }, ok(100), { kind: 'up', since: 100 }],
    ['good check keeps the original up-since', UP, ok(100), { kind: 'up', since: 0, at: 100 }],
    [
      'refused while up → down at once',
      UP,
      fail('refused', 100),
      { kind: 'down', reason: 'refused', since: 100 },
    ],
    [
      'dropped (reconnect failed) → down at once',
      UP,
      fail('dropped', 100),
      { kind: 'down', reason: 'dropped' },
    ],
    [
      'refused at start-up → down',
      { kind: 'starting' },
      fail('refused', 1),
      { kind: 'down', reason: 'refused' },
    ],
    [
      'one timeout while up → suspect 1, keeps status and when it was read',
      UP,
      fail('timeout', 10),
      { kind: 'suspect', failures: 1, status: MASTER, statusAt: 0 },
    ],
    [
      'second timeout → suspect 2, keeps since',
      SUSPECT1,
      fail('timeout', 20),
      { kind: 'suspect', failures: 2, since: 10, statusAt: 0 },
    ],
    [
      'third timeout → down (timeouts)',
      { ...SUSPECT1, failures: 2 },
      fail('timeout', 30),
      { kind: 'down', reason: 'timeouts', since: 30 },
    ],
    ['error counts like a timeout', UP, fail('error', 10), { kind: 'suspect', failures: 1 }],
    [
      'a timeout starts the silence at its check',
      UP,
      fail('timeout', 10),
      { kind: 'suspect', silentSince: 10 },
    ],
    [
      'the silence carries into down (timeouts)',
      { ...SUSPECT1, failures: 2, silentSince: 10 },
      fail('timeout', 30),
      { kind: 'down', reason: 'timeouts', since: 30, silentSince: 10 },
    ],
    [
      'an error packet breaks the silence (mysqld answered)',
      { ...SUSPECT1, silentSince: 10 },
      fail('error', 20),
      { kind: 'suspect', failures: 2, silentSince: undefined },
    ],
    [
      'down (refused) then timeouts: silent from that check on',
      DOWN,
      fail('timeout', 50),
      { kind: 'down', reason: 'timeouts', silentSince: 50 },
    ],
    [
      'down (timeouts) keeps its silence on the next timeout',
      { kind: 'down', since: 30, reason: 'timeouts', message: 't', silentSince: 10 },
      fail('timeout', 60),
      { kind: 'down', since: 30, silentSince: 10 },
    ],
    [
      'errors reaching failAfter → down (errors)',
      { ...SUSPECT1, failures: 2 },
      fail('error', 30),
      { kind: 'down', reason: 'errors' },
    ],
    [
      'refused while suspect → down at once',
      SUSPECT1,
      fail('refused', 15),
      { kind: 'down', reason: 'refused' },
    ],
    ['good check while suspect → up again', SUSPECT1, ok(15), { kind: 'up', since: 15, failures: undefined }],
    [
      'timeout at start-up → suspect without status',
      { kind: 'starting' },
      fail('timeout', 1),
      { kind: 'suspect', status: null, statusAt: null },
    ],
    [
      'down stays down on a timeout (keeps since); reason follows: mysqld answers the socket again',
      DOWN,
      fail('timeout', 50),
      { kind: 'down', since: 5, reason: 'timeouts' },
    ],
    [
      'down (timeouts) then refused → reason refused, keeps since',
      { kind: 'down', since: 5, reason: 'timeouts', message: 't' },
      fail('refused', 50),
      { kind: 'down', since: 5, reason: 'refused' },
    ],
    [
      'down (errors) then dropped → reason dropped, keeps since',
      { kind: 'down', since: 5, reason: 'errors', message: 'e' },
      fail('dropped', 50),
      { kind: 'down', since: 5, reason: 'dropped' },
    ],
    ['down → up on a good check', DOWN, ok(60), { kind: 'up', since: 60 }],
  ];
  for (const [name, prev, obs, expected] of table) {
    it(name, () => {
      const next = decideHealth(prev, obs, 3) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(expected)) assert.deepEqual(next[k], v, `field ${k}`);
    });
  }

  it('failAfter 1 makes the first timeout down', () => {
    assert.equal(decideHealth(UP, fail('timeout', 1), 1).kind, 'down');
  });
});

describe('client reportsMysqldDown (agent/<node>.mysqldDown: the server fails over without a probe)', () => {
  // Only a mysqld that is really not running may be reported down; one that times out or answers
  // with errors is left to the server's own probe (design §5.3).
  const table: Array<[string, Health, boolean]> = [
    ['starting → no', { kind: 'starting' }, false],
    ['up → no', UP, false],
    ['suspect (one timeout) → no', SUSPECT1, false],
    ['down, refused (nothing listens) → yes', DOWN, true],
    ['down, dropped (connection died, reconnect refused) → yes', { ...DOWN, reason: 'dropped' }, true],
    ['down, timeouts (hung mysqld) → no: the server probes', { ...DOWN, reason: 'timeouts' }, false],
    [
      'down, errors (too many connections, lock waits, access denied) → no: the server probes',
      { ...DOWN, reason: 'errors' },
      false,
    ],
  ];
  for (const [name, h, expected] of table) {
    it(name, () => assert.equal(reportsMysqldDown(h), expected));
  }

  const run = (obs: readonly Observation[]): Health =>
    obs.reduce<Health>((h, o) => decideHealth(h, o, 3), UP);
  const sequences: Array<[string, Observation[], string, boolean]> = [
    ['killed mysqld: one refused check', [fail('refused', 1)], 'down', true],
    ['killed under an open connection: dropped', [fail('dropped', 1)], 'down', true],
    [
      'three errors (too many connections)',
      [fail('error', 1), fail('error', 2), fail('error', 3)],
      'down',
      false,
    ],
    ['three timeouts (SIGSTOP)', [fail('timeout', 1), fail('timeout', 2), fail('timeout', 3)], 'down', false],
    ['two errors: still suspect', [fail('error', 1), fail('error', 2)], 'suspect', false],
    [
      'hung, then killed: refused makes it definitive',
      [fail('timeout', 1), fail('timeout', 2), fail('timeout', 3), fail('refused', 4)],
      'down',
      true,
    ],
    [
      'killed, then restarting but not answering yet: no longer definitive',
      [fail('refused', 1), fail('timeout', 2)],
      'down',
      false,
    ],
  ];
  for (const [name, obs, kind, down] of sequences) {
    it(`${name} → ${kind}, mysqldDown ${down}`, () => {
      const h = run(obs);
      assert.equal(h.kind, kind);
      assert.equal(reportsMysqldDown(h), down);
    });
  }
});

describe('client boundLag: a replica whose master is gone reports how stale it can be', () => {
  const connecting = (lag: number | null, sql = true): MysqlStatus => ({
    ...REPLICA,
    replica: { ...REPLICA.replica!, ioRunning: false, ioConnecting: true, sqlRunning: sql, lagSeconds: lag },
  });
  const lagOf = (s: MysqlStatus) => s.replica?.lagSeconds;
  const table: Array<
    [string, { status: MysqlStatus; at: number } | null, MysqlStatus, number | null | undefined]
  > = [
    [
      'streaming with lag 2, then the master dies: 2 s + 1.5 s since',
      { status: { ...REPLICA, replica: { ...REPLICA.replica!, lagSeconds: 2 } }, at: 1000 },
      connecting(null),
      3.5,
    ],
    [
      'already bounded at 3.5 s, 1.5 s later: 5 s (it grows with time)',
      { status: connecting(3.5), at: 2500 },
      connecting(null),
      5,
    ],
    ['no earlier measure: unknown', null, connecting(null), null],
    [
      'SQL thread stopped too: unknown (not served anyway)',
      { status: REPLICA, at: 1000 },
      connecting(null, false),
      null,
    ],
    ['IO thread running: what mysqld says', { status: REPLICA, at: 1000 }, REPLICA, 0],
  ];
  // Each next check is read 1.5 s after the previous one.
  for (const [name, prev, next, want] of table)
    it(name, () => assert.equal(lagOf(boundLag(prev, next, (prev?.at ?? 0) + 1500)), want));

  it('decideHealth applies it on every successful check', () => {
    const h1 = decideHealth(
      { kind: 'starting' },
      ok(1000, { ...REPLICA, replica: { ...REPLICA.replica!, lagSeconds: 1 } }),
      3,
    );
    const h2 = decideHealth(h1, ok(3000, connecting(null)), 3);
    assert.equal(h2.kind === 'up' ? lagOf(h2.status) : undefined, 3);
  });
});

describe('client lag buckets', () => {
  const table: Array<[number | null, number, number | null]> = [
    [null, 30, null],
    [0, 30, 0],
    [1, 30, 0], // 0 ↔ 1 s flicker is not a change
    [4, 30, 0],
    [5, 30, 2],
    [30, 30, 4], // exactly at the limit is still within it
    [31, 30, 5],
    [10, 8, 3], // the group's limit is its own boundary
    [7, 8, 2],
    [1, 0, 1], // limit 0: any lag is over it
    [700, 30, 9],
  ];
  for (const [lag, max, bucket] of table) {
    it(`lag ${String(lag)} with limit ${max} → bucket ${String(bucket)}`, () =>
      assert.equal(lagBucket(lag, max), bucket));
  }
});

describe('client online/ publication', () => {
  const rec = onlineRecordFor(REPLICA, 1);

  it('builds a record that passes the online schema', () => {
    assert.doesNotThrow(() => onlineSchema.parse(rec));
    assert.doesNotThrow(() => onlineSchema.parse(onlineRecordFor(MASTER, 1)));
    assert.equal(onlineRecordFor(MASTER, 1).gtidIo, undefined);
    assert.equal(rec.masterNode, '127.0.0.1:3306');
  });

  const withReplica = (r: Partial<NonNullable<MysqlStatus['replica']>>, extra: Partial<MysqlStatus> = {}) =>
    onlineRecordFor({ ...REPLICA, ...extra, replica: { ...REPLICA.replica!, ...r } }, 2);

  const table: Array<[string, ReturnType<typeof onlineRecordFor>, 'keep' | 'update']> = [
    ['new GTID and time only → keep', withReplica({ gtidIo: '0-1-99' }, { gtidCurrent: '0-1-99' }), 'keep'],
    ['lag 0 → 1 (same bucket) → keep', withReplica({ lagSeconds: 1 }), 'keep'],
    ['lag 0 → 6 (new bucket) → update', withReplica({ lagSeconds: 6 }), 'update'],
    ['lag becomes unknown → update', withReplica({ lagSeconds: null }), 'update'],
    ['IO thread stops → update', withReplica({ ioRunning: false }), 'update'],
    ['SQL thread stops → update', withReplica({ sqlRunning: false }), 'update'],
    ['re-pointed to another master → update', withReplica({ masterNode: '127.0.0.1:3307' }), 'update'],
    ['read_only flips → update', withReplica({}, { readOnly: false }), 'update'],
    ['promoted → update', onlineRecordFor(MASTER, 3), 'update'],
  ];
  for (const [name, next, kind] of table) {
    it(name, () => assert.equal(onlineAction(rec, { kind: 'publish', record: next }, 30).kind, kind));
  }

  const semiMaster = (semiSync: NonNullable<MysqlStatus['semiSync']>) =>
    onlineRecordFor({ ...MASTER, semiSync }, 4);
  const SEMI = { masterEnabled: true, masterActive: true, masterClients: 2, slaveEnabled: false };
  it("a master's record carries its semi-sync side; a replica's does not", () => {
    assert.deepEqual(semiMaster(SEMI).semiSync, { enabled: true, active: true, clients: 2 });
    assert.doesNotThrow(() => onlineSchema.parse(semiMaster(SEMI)));
    assert.equal(onlineRecordFor({ ...REPLICA, semiSync: SEMI }, 4).semiSync, undefined);
  });
  const semiTable: Array<[string, NonNullable<MysqlStatus['semiSync']>, 'keep' | 'update']> = [
    ['semi-sync unchanged → keep', SEMI, 'keep'],
    ['falls back to async → update', { ...SEMI, masterActive: false }, 'update'],
    ['master side disabled → update', { ...SEMI, masterEnabled: false }, 'update'],
    ['a semi-sync replica leaves → update', { ...SEMI, masterClients: 1 }, 'update'],
  ];
  for (const [name, next, kind] of semiTable) {
    it(name, () =>
      assert.equal(
        onlineAction(semiMaster(SEMI), { kind: 'publish', record: semiMaster(next) }, 30).kind,
        kind,
      ),
    );
  }

  it('creates when nothing is published, deletes when absent is wanted, keeps absent absent', () => {
    assert.equal(onlineAction(null, { kind: 'publish', record: rec }, 30).kind, 'create');
    assert.equal(onlineAction(rec, { kind: 'absent', why: 'mysqld-down' }, 30).kind, 'delete');
    assert.equal(onlineAction(null, { kind: 'absent', why: 'mysqld-down' }, 30).kind, 'keep');
  });

  const wishes: Array<[string, Health, 'absent' | 'present' | 'unknown', string]> = [
    ['up, no rejoin → publish', UP, 'absent', 'publish'],
    ['suspect with a status → still published', SUSPECT1, 'absent', 'publish'],
    ['down → absent', DOWN, 'absent', 'mysqld-down'],
    ['starting → absent', { kind: 'starting' }, 'absent', 'starting'],
    [
      'suspect without a status → absent',
      { ...SUSPECT1, status: null, statusAt: null },
      'absent',
      'suspect-no-status',
    ],
    ['up but rejoin pending → absent', UP, 'present', 'rejoin-pending'],
    ['up, rejoin not read yet → absent', UP, 'unknown', 'rejoin-unknown'],
    ['down and rejoin pending → absent because down', DOWN, 'present', 'mysqld-down'],
  ];
  for (const [name, h, rejoin, expected] of wishes) {
    it(name, () => {
      const w = desiredOnline(h, rejoin);
      assert.equal(w.kind === 'publish' ? 'publish' : w.why, expected);
    });
  }
});

describe('client unansweredMs (published in agent/ for the server confirmation)', () => {
  const rows: Array<[string, Health, number | null]> = [
    [
      'down by timeouts: time since the first unanswered check',
      { kind: 'down', since: 30, reason: 'timeouts', message: 't', silentSince: 10 },
      90,
    ],
    ['down by refusal: not silent, dead (mysqldDown instead)', DOWN, null],
    ['down by errors: mysqld answers', { kind: 'down', since: 30, reason: 'errors', message: 'e' }, null],
    ['suspect: not down yet', { ...SUSPECT1, silentSince: 10 }, null],
    ['up', UP, null],
  ];
  for (const [name, h, want] of rows) it(name, () => assert.equal(unansweredMs(h, 100), want));
});
