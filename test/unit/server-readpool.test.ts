import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planReadPool, type ReplicaProbe } from '../../server/readpool';
import { A, B, C, M, view, type MemberSpec } from './server-fixtures';

const NOW = 50_000;
const RETURN = 2000;

interface Case {
  readonly name: string;
  readonly members: readonly MemberSpec[];
  /** Current route read list. */
  readonly read: readonly string[];
  readonly probes?: Readonly<Record<string, ReplicaProbe>>;
  readonly healthySince?: Readonly<Record<string, number>>;
  readonly expectRead: readonly string[];
  readonly remove?: readonly string[];
  readonly mark?: readonly string[];
  readonly add?: readonly string[];
  readonly needsProbe?: readonly string[];
  readonly reason?: RegExp;
  readonly recheckAt?: number | null;
  readonly masterSince?: number;
}

const master: MemberSpec = { node: M };

const cases: Case[] = [
  {
    name: 'all healthy: nothing changes',
    members: [master, { node: A }, { node: B }],
    read: [A, B],
    expectRead: [A, B],
  },
  {
    name: 'IO thread stopped: leaves at once',
    members: [master, { node: A, online: { ioRunning: false } }, { node: B }],
    read: [A, B],
    expectRead: [B],
    remove: [A],
    reason: /replication stopped/,
  },
  {
    name: "master's heartbeat gone: replicas whose IO thread lost it stay in the pool",
    members: [
      { node: M, online: null },
      { node: A, online: { ioRunning: false } },
      { node: B, online: { ioRunning: false } },
    ],
    read: [A, B],
    expectRead: [A, B],
  },
  {
    name: "master's heartbeat gone: a stopped SQL thread still leaves",
    members: [
      { node: M, online: null },
      { node: A, online: { ioRunning: false, sqlRunning: false } },
      { node: B },
    ],
    read: [A, B],
    expectRead: [B],
    remove: [A],
    reason: /SQL stopped/,
  },
  {
    name: 'lag beyond maxReadLagSeconds: leaves',
    members: [master, { node: A, online: { lagSeconds: 31 } }, { node: B }],
    read: [A, B],
    expectRead: [B],
    remove: [A],
    reason: /lag 31s > 30s/,
  },
  {
    name: 'lag 1 s but an apply backlog estimated beyond maxReadLagSeconds: leaves',
    members: [
      master,
      { node: A, online: { lagSeconds: 1, backlogTrx: 9000, backlogSeconds: 45 } },
      { node: B },
    ],
    read: [A, B],
    expectRead: [B],
    remove: [A],
    reason: /apply backlog 9000 transactions \(~45s\) > 30s/,
  },
  {
    name: 'an apply backlog within the limit, or not estimable, keeps it',
    members: [
      master,
      { node: A, online: { lagSeconds: 1, backlogTrx: 900, backlogSeconds: 3 } },
      { node: B, online: { lagSeconds: 1, backlogTrx: 50, backlogSeconds: null } },
    ],
    read: [A, B],
    expectRead: [A, B],
  },
  {
    name: 'replicating from someone else (checked directly): leaves',
    members: [master, { node: A, online: { masterNode: C } }, { node: B }],
    read: [A, B],
    probes: { [A]: { kind: 'answering', masterNode: C, ioRunning: true, sqlRunning: true, lagSeconds: 0 } },
    expectRead: [B],
    remove: [A],
    reason: /replicates from/,
  },
  {
    name: 'heartbeat gone: undecided until probed (stays meanwhile)',
    members: [master, { node: A, online: null }, { node: B }],
    read: [A, B],
    expectRead: [A, B],
    needsProbe: [A],
  },
  {
    name: 'heartbeat gone, probe refused: leaves',
    members: [master, { node: A, online: null }, { node: B }],
    read: [A, B],
    probes: { [A]: { kind: 'down', error: 'ECONNREFUSED' } },
    expectRead: [B],
    remove: [A],
    reason: /down: ECONNREFUSED/,
  },
  {
    name: 'heartbeat gone but the replica replicates fine (its agent died): stays',
    members: [master, { node: A, online: null }, { node: B }],
    read: [A, B],
    probes: { [A]: { kind: 'answering', masterNode: M, ioRunning: true, sqlRunning: true, lagSeconds: 0 } },
    expectRead: [A, B],
  },
  {
    name: 'heartbeat record older than the master change: probe, do not trust it',
    members: [master, { node: A, online: { at: 5, ioRunning: false } }, { node: B }],
    masterSince: 10,
    read: [A, B],
    expectRead: [A, B],
    needsProbe: [A],
  },
  {
    name: 'heartbeat record naming the old master: probe; the probe says it follows the new one',
    members: [master, { node: A, online: { masterNode: C, ioRunning: false } }, { node: B }],
    read: [A, B],
    probes: { [A]: { kind: 'answering', masterNode: M, ioRunning: true, sqlRunning: true, lagSeconds: 0 } },
    expectRead: [A, B],
  },
  {
    name: 'healthy again but not long enough: waits (hysteresis)',
    members: [master, { node: A, slaveDown: { since: 1, reason: 'down' } }, { node: B }],
    read: [B],
    healthySince: { [A]: NOW - 500 },
    expectRead: [B],
    recheckAt: NOW - 500 + RETURN,
  },
  {
    name: 'healthy long enough: returns and its entry goes',
    members: [master, { node: A, slaveDown: { since: 1, reason: 'down' } }, { node: B }],
    read: [B],
    healthySince: { [A]: NOW - RETURN },
    expectRead: [A, B],
    add: [A],
  },
  {
    name: 'drained by an operator: never returns by itself',
    members: [
      master,
      { node: A, slaveDown: { since: 1, reason: 'drained by op', drained: true } },
      { node: B },
    ],
    read: [B],
    healthySince: { [A]: 0 },
    expectRead: [B],
  },
  {
    name: 'drained while in the pool: leaves, keeps the operator entry',
    members: [
      master,
      { node: A, slaveDown: { since: 1, reason: 'drained by op', drained: true } },
      { node: B },
    ],
    read: [A, B],
    expectRead: [B],
    remove: [A],
  },
  {
    name: 'rejoin pending (old master): out, with an entry',
    members: [master, { node: A, rejoin: true, online: null }, { node: B }],
    read: [B],
    expectRead: [B],
    mark: [A],
    reason: /rejoin pending/,
  },
  {
    name: 'a non-member in the route is dropped',
    members: [master, { node: A }],
    read: [A, C],
    expectRead: [A],
  },
];

describe('planReadPool', () => {
  for (const c of cases) {
    it(c.name, () => {
      const v = view({
        members: c.members,
        read: c.read,
        ...(c.masterSince !== undefined ? { masterSince: c.masterSince } : {}),
      });
      const plan = planReadPool(v, {
        now: NOW,
        probes: new Map(Object.entries(c.probes ?? {})),
        healthySince: new Map(Object.entries(c.healthySince ?? {})),
        returnAfterMs: RETURN,
      });
      assert.ok(plan);
      assert.deepEqual([...plan.read].sort(), [...c.expectRead].sort());
      assert.deepEqual(
        plan.remove.map((r) => r.node),
        c.remove ?? [],
      );
      assert.deepEqual(
        plan.mark.map((r) => r.node),
        c.mark ?? [],
      );
      assert.deepEqual(plan.add, c.add ?? []);
      assert.deepEqual(plan.needsProbe, c.needsProbe ?? []);
      if (c.reason) assert.match([...plan.remove, ...plan.mark][0]!.reason, c.reason);
      if (c.recheckAt !== undefined) assert.equal(plan.recheckAt, c.recheckAt);
      const expectChanged =
        (c.remove ?? []).length + (c.mark ?? []).length + (c.add ?? []).length > 0 ||
        c.expectRead.length !== c.read.length;
      assert.equal(plan.changed, expectChanged);
    });
  }

  it('no plan without a master or route record', () => {
    assert.equal(
      planReadPool(view({ members: [master], master: null }), {
        now: NOW,
        probes: new Map(),
        healthySince: new Map(),
        returnAfterMs: RETURN,
      }),
      null,
    );
  });
});
