import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideFence, fenceGate, fenceThresholdMs, type ReplicaReport } from '../../client/fence';

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
