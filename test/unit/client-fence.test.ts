import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decideFence,
  decideStray,
  fenceGate,
  fenceThresholdMs,
  type ReplicaReport,
  type StrayView,
} from '../../client/fence';

const SELF = '10.0.0.1:3306';
const R1 = '10.0.0.2:3306';
const R2 = '10.0.0.3:3306';
const reg = (node: string, serverId: number) => {
  const [host, port] = node.split(':');
  return { serverId, host: host!, port: Number(port) };
};
const attached: ReplicaReport = { ioRunning: true, masterNode: SELF };

describe('client fenceGate (session timeout 3000 ms → threshold 2000 ms)', () => {
  assert.equal(fenceThresholdMs(3000), 2000);
  const table: Array<[string, boolean, number, boolean | null, string]> = [
    ['connected → skip', true, 0, false, 'zk-connected'],
    ['disconnected 1999 ms → skip', false, 1999, false, 'below-threshold'],
    ['disconnected 2000 ms, writable → check', false, 2000, false, 'check'],
    ['disconnected long, read_only → skip', false, 9000, true, 'read-only'],
    ['disconnected long, mysqld down → skip', false, 9000, null, 'mysqld-not-alive'],
  ];
  for (const [name, zkConnected, zkSilentMs, readOnly, expected] of table) {
    it(name, () => {
      const g = fenceGate({ zkConnected, zkSilentMs, sessionTimeoutMs: 3000, readOnly });
      assert.equal(g.kind === 'check' ? 'check' : g.why, expected);
    });
  }
});

describe('client decideFence', () => {
  const table: Array<
    [
      string,
      readonly string[] | null,
      ReturnType<typeof reg>[],
      Array<[string, ReplicaReport | null]>,
      string,
      RegExp?,
    ]
  > = [
    [
      'every replica registered and attached → failsafe',
      [SELF, R1, R2],
      [reg(R1, 2), reg(R2, 3)],
      [
        [R1, attached],
        [R2, attached],
      ],
      'failsafe',
    ],
    ['membership unknown → fence', null, [reg(R1, 2)], [[R1, attached]], 'fence', /membership unknown/],
    ['no other member → failsafe (nobody can be promoted)', [SELF], [], [], 'failsafe'],
    [
      'one replica not registered on the master → fence',
      [SELF, R1, R2],
      [reg(R1, 2)],
      [
        [R1, attached],
        [R2, attached],
      ],
      'fence',
      /not registered.*10\.0\.0\.3/,
    ],
    [
      'registered but unreachable directly → fence',
      [SELF, R1],
      [reg(R1, 2)],
      [[R1, null]],
      'fence',
      /unreachable/,
    ],
    [
      'registered but its IO thread stopped (promotion) → fence',
      [SELF, R1],
      [reg(R1, 2)],
      [[R1, { ioRunning: false, masterNode: SELF }]],
      'fence',
      /IO thread not running/,
    ],
    [
      'replicating from someone else → fence',
      [SELF, R1],
      [reg(R1, 2)],
      [[R1, { ioRunning: true, masterNode: R2 }]],
      'fence',
      /replicates from 10\.0\.0\.3/,
    ],
    [
      'replication forgotten (RESET SLAVE ALL) → fence',
      [SELF, R1],
      [reg(R1, 2)],
      [[R1, { ioRunning: false, masterNode: null }]],
      'fence',
    ],
    ['no report at all for a member → fence', [SELF, R1], [reg(R1, 2)], [], 'fence', /unreachable/],
    [
      'extra registered non-members do not matter',
      [SELF, R1],
      [reg(R1, 2), reg(R2, 3)],
      [[R1, attached]],
      'failsafe',
    ],
  ];
  for (const [name, members, registered, reports, kind, reason] of table) {
    it(name, () => {
      const d = decideFence({ self: SELF, members, registered, reports: new Map(reports) });
      assert.equal(d.kind, kind);
      if (reason !== undefined) {
        assert.equal(d.kind, 'fence');
        if (d.kind === 'fence') assert.match(d.reason, reason);
      }
    });
  }
});

describe('client decideStray (a writable node that ZooKeeper says is not the master)', () => {
  const SELF_MASTER: StrayView = {
    group: 'g1',
    master: { node: SELF, epoch: 3 },
    rejoinPending: false,
    task: null,
    white: false,
  };
  const OTHER_MASTER: StrayView = { ...SELF_MASTER, master: { node: R1, epoch: 4 } };
  const promoting = (candidate: string | null, kind = 'failover') => ({ kind, candidate });
  // [name, readOnly, view, expected kind, expected why / stray, reason pattern]
  const table: Array<[string, boolean | null, StrayView, 'none' | 'hold' | 'fence', string, RegExp?]> = [
    // The legitimate master is never fenced by this rule.
    ['master/ names self, writable → none', false, SELF_MASTER, 'none', 'legitimate-master'],
    [
      'master/ names self, writable, during maintenance → none',
      false,
      { ...SELF_MASTER, white: true },
      'none',
      'legitimate-master',
    ],
    [
      'master/ names self, another node is a task candidate → none',
      false,
      { ...SELF_MASTER, task: promoting(R1, 'switchover') },
      'none',
      'legitimate-master',
    ],
    // Nothing to fence.
    ['read-only replica → none', true, OTHER_MASTER, 'none', 'read-only'],
    [
      'read-only with rejoin pending → none',
      true,
      { ...OTHER_MASTER, rejoinPending: true },
      'none',
      'read-only',
    ],
    ['no fresh status (mysqld down or suspect) → none', null, OTHER_MASTER, 'none', 'mysqld-not-up'],
    ['not in a group → none', false, { ...OTHER_MASTER, group: null }, 'none', 'no-group'],
    [
      'no master/ record yet (group being added) → none',
      false,
      { ...OTHER_MASTER, master: 'absent' },
      'none',
      'master-absent',
    ],
    [
      'invalid master/ → none (never act on invalid data)',
      false,
      { ...OTHER_MASTER, master: 'invalid' },
      'none',
      'master-invalid',
    ],
    // Stray writable nodes are fenced.
    [
      'master/ names another node, writable → fence',
      false,
      OTHER_MASTER,
      'fence',
      'not-master',
      /master\/g1 names 10\.0\.0\.2:3306 \(epoch 4\)/,
    ],
    [
      'rejoin/<self> exists (old master back writable) → fence',
      false,
      { ...OTHER_MASTER, rejoinPending: true },
      'fence',
      'rejoin-pending',
      /rejoin\/10\.0\.0\.1:3306 exists/,
    ],
    [
      'rejoin/<self> exists although master/ names self → fence',
      false,
      { ...SELF_MASTER, rejoinPending: true },
      'fence',
      'rejoin-pending',
    ],
    [
      'rejoin/<self> exists and master/ invalid → fence',
      false,
      { ...OTHER_MASTER, master: 'invalid', rejoinPending: true },
      'fence',
      'rejoin-pending',
    ],
    [
      'another node is the task candidate (this one is the un-hung old master) → fence',
      false,
      { ...OTHER_MASTER, task: promoting(R2) },
      'fence',
      'not-master',
    ],
    [
      'task without a candidate yet → fence',
      false,
      { ...OTHER_MASTER, task: promoting(null) },
      'fence',
      'not-master',
    ],
    [
      'maintenance does not cover a pending rejoin → fence',
      false,
      { ...OTHER_MASTER, white: true, rejoinPending: true },
      'fence',
      'rejoin-pending',
    ],
    // Promotions under way and operators at work are left alone.
    [
      'failover task promotes this node (master/ not moved yet) → hold',
      false,
      { ...OTHER_MASTER, task: promoting(SELF) },
      'hold',
      'promotion-in-progress',
    ],
    [
      'switchover task promotes this node → hold',
      false,
      { ...OTHER_MASTER, task: promoting(SELF, 'switchover') },
      'hold',
      'promotion-in-progress',
    ],
    [
      'task promotes this node, rejoin pending too → hold',
      false,
      { ...OTHER_MASTER, rejoinPending: true, task: promoting(SELF) },
      'hold',
      'promotion-in-progress',
    ],
    ['invalid task/ → hold', false, { ...OTHER_MASTER, task: 'invalid' }, 'hold', 'task-invalid'],
    [
      'maintenance (white/), promoted by hand before setmaster → hold',
      false,
      { ...OTHER_MASTER, white: true },
      'hold',
      'maintenance',
    ],
  ];
  for (const [name, readOnly, view, kind, what, reason] of table) {
    it(name, () => {
      const d = decideStray({ self: SELF, readOnly, view });
      assert.equal(d.kind, kind);
      assert.equal(d.kind === 'fence' ? d.stray : d.why, what);
      if (reason !== undefined) assert.match(d.kind === 'fence' ? d.reason : '', reason);
    });
  }
});
