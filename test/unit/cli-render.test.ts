import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventSeq, renderHistory, type HistoryEntry } from '../../cli/history';
import { renderTable } from '../../cli/output';
import { buildGroupStatus, positionFromOnline, renderGroupStatus, renderStatus } from '../../cli/status';
import { healthyReplica } from '../../cli/drain';
import { A, B, M, online, pos, view } from './server-fixtures';

describe('status', () => {
  const routers = [
    { id: 'r1', v: 1 as const, host: 'h1', applied: { g1: 4 }, at: 1 },
    { id: 'r2', v: 1 as const, host: 'h2', applied: { g1: 3 }, at: 1, lastError: 'reload failed' },
  ];

  it('shows states, the candidate and why, routers behind and alerts', () => {
    const v = view({
      epoch: 4,
      members: [
        { node: M },
        { node: A, online: { gtidIo: '0-1-12', gtidCurrent: '0-1-12' } },
        {
          node: B,
          online: null,
          rejoin: true,
          slaveDown: { since: 1, reason: 'drained by operator', drained: true },
        },
      ],
      read: [A],
      alerts: [{ kind: 'router', detail: { why: 'x' } }],
      white: true,
    });
    const positions = new Map(v.members.map((m) => [m.node, positionFromOnline(m.online)]));
    const s = buildGroupStatus(v, positions, routers, {
      owner: 'server-1',
      at: 1,
      path: '/x',
      session: '1',
      waiters: 0,
    });
    assert.deepEqual(
      s.nodes.map((n) => [n.node, n.role, n.state.join('+'), n.inReadPool]),
      [
        [M, 'master', 'online', false],
        [A, 'replica', 'online', true],
        [B, 'unknown', 'down+drained+rejoin pending', false],
      ],
    );
    assert.equal(s.candidate.node, A);
    assert.match(s.candidate.reason, /received the most \(0-1-12\)/);
    assert.deepEqual(
      s.routers.map((r) => [r.id, r.appliedEpoch, r.behind]),
      [
        ['r1', 4, false],
        ['r2', 3, true],
      ],
    );
    assert.ok(s.warnings.some((w) => /router r2 applied epoch 3, route is at 4/.test(w)));
    const text = renderGroupStatus(s, 2000);
    for (const re of [
      /master: 10\.0\.0\.1:3306 {2}epoch 4/,
      /WHITE/,
      /would promote: 10\.0\.0\.2:3306/,
      /router r2 \(h2\): epoch 3 {2}BEHIND/,
      /ALERT router/,
      /down, drained, rejoin pending/,
      /lock: held by server-1/,
    ]) {
      assert.match(text, re);
    }
  });

  it('flags a switchover / add task nobody holds the lock for, not a failover one', () => {
    const holder = { owner: 'cli:h:1', at: 1, path: '/x', session: '1', waiters: 0 };
    const members = [{ node: M }, { node: A }];
    const dead = buildGroupStatus(
      view({ members, task: { kind: 'switchover', step: 'catchup' } }),
      new Map(),
      [],
      null,
    );
    assert.equal(dead.task?.noLockHolder, true);
    assert.match(renderGroupStatus(dead, 2000), /task: switchover at step 'catchup' .*NO LOCK HOLDER/);
    const live = buildGroupStatus(
      view({ members, task: { kind: 'switchover', step: 'catchup' } }),
      new Map(),
      [],
      holder,
    );
    assert.equal(live.task?.noLockHolder, false);
    assert.doesNotMatch(renderGroupStatus(live, 2000), /NO LOCK HOLDER/);
    const failover = buildGroupStatus(
      view({ members, task: { kind: 'failover', step: 'drain' } }),
      new Map(),
      [],
      null,
    );
    assert.equal(failover.task?.noLockHolder, false, 'failover tasks are resumed by the workers');
  });

  it('lists a task of an unregistered group (a dead mha add) with its alerts', () => {
    const text = renderStatus(
      {
        groups: [],
        openTasks: [
          {
            group: 'g9',
            kind: 'add',
            step: 'start replication',
            worker: 'cli:gone:1',
            startedAt: 1000,
            lock: null,
            alerts: [
              {
                name: 'g9__operation-abandoned',
                kind: 'operation-abandoned',
                at: 1500,
                detail: { taskId: 'add-1' },
              },
            ],
          },
        ],
        servers: [],
        routers: [],
        problems: [],
      },
      2000,
    );
    assert.match(
      text,
      /group g9 \(not registered\): task add at step 'start replication' by cli:gone:1, .*NO LOCK HOLDER/,
    );
    assert.match(text, /ALERT operation-abandoned/);
    assert.doesNotMatch(text, /no groups/);
  });

  it('says nobody would be promoted, and why, when no replica is eligible', () => {
    const v = view({ members: [{ node: M }, { node: A, priority: 0 }] });
    const s = buildGroupStatus(v, new Map([[A, pos('0-1-3')]]), [], null);
    assert.equal(s.candidate.node, null);
    assert.match(s.candidate.reason, /no-eligible-replica: .*priority 0/);
  });

  it('flags two writable nodes and a master/route epoch mismatch', () => {
    const v = view({ epoch: 2, routeEpoch: 1, members: [{ node: M }, { node: A }] });
    const s = buildGroupStatus(
      v,
      new Map([
        [M, { ...pos('', { master: null }), readOnly: false } as ReturnType<typeof pos>],
        [A, { ...pos('0-1-3'), readOnly: false } as ReturnType<typeof pos>],
      ]),
      [],
      null,
    );
    assert.ok(s.warnings.includes('master/ is at epoch 2, haproxy/ at 1'));
    assert.ok(s.warnings.some((w) => w.startsWith('more than one writable node')));
  });

  it('healthyReplica requires a running, read-only replica of the master', () => {
    assert.equal(healthyReplica(online('replica'), M), true);
    assert.equal(healthyReplica(online('replica', { sqlRunning: false }), M), false);
    assert.equal(healthyReplica(online('replica', { masterNode: B }), M), false);
    assert.equal(healthyReplica(null, M), false);
  });
});

describe('history', () => {
  it('orders by sequence and shows step durations', () => {
    assert.equal(eventSeq('event-0000000012'), 12);
    assert.equal(eventSeq('lock-1'), null);
    const entries: HistoryEntry[] = [
      {
        seq: 3,
        name: 'event-0000000003',
        ok: true,
        event: {
          v: 1,
          kind: 'switchover',
          from: M,
          to: A,
          epoch: 2,
          startedAt: 0,
          endedAt: 57,
          steps: [
            { name: 'fence route', ms: 2.4, ok: true },
            { name: 'catch up', ms: 30, ok: false },
          ],
          detail: {},
        },
      },
      { seq: 4, name: 'event-0000000004', ok: false, error: 'bad record' },
    ];
    const text = renderHistory('g1', entries);
    assert.match(
      text,
      /switchover \(failed\) +10\.0\.0\.1:3306 -> 10\.0\.0\.2:3306 +2 +57ms +- +fence route 2ms, catch up 30ms FAILED/,
    );
    assert.match(text, /INVALID.*bad record/);
    assert.equal(renderHistory('g1', []), "no history for group 'g1'\n");
  });

  it('renders aligned tables', () => {
    assert.equal(renderTable(['a', 'bb'], [['xxx', 'y']]), 'a    bb\nxxx  y\n');
  });
});
