import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ReachablePosition } from '../../core/candidate';
import { nextTryAt, planRepoint, repointVerdict, type RepointTry } from '../../server/repoint';
import { A, B, C, M, pos, view, type ViewSpec } from './server-fixtures';

/**
 * Issue 11, hole 4: which replicas do not follow the master, and what to do with one that
 * answers (server/repoint.ts). A is the master after a failover from M at epoch 2 (since 5000);
 * heartbeats are published at 6000 unless a row says otherwise.
 */
const after = (o: Partial<ViewSpec> & { members: ViewSpec['members'] }): ViewSpec => ({
  master: A,
  epoch: 2,
  masterSince: 5000,
  masterReason: 'failover',
  ...o,
});
const follows = { masterNode: A, at: 6000 };
const alert = (nodes: Record<string, string>) => [
  { kind: 'repoint-failed', detail: { epoch: 2, master: A, nodes } },
];

describe('planRepoint', () => {
  const cases: ReadonlyArray<{
    readonly name: string;
    readonly spec: ViewSpec;
    readonly tried?: Record<string, RepointTry>;
    readonly expect: { pending: string[]; tryNow: string[]; resolved: string[] } | null;
  }> = [
    {
      name: 'every replica follows the master and no alert: nothing to do (no cost at rest)',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: B, online: follows },
        ],
      }),
      expect: null,
    },
    {
      name: 'the failover could not re-point B (down): pending, tried now',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: B, online: null },
        ],
        alerts: alert({ [B]: 'connect ECONNREFUSED' }),
      }),
      expect: { pending: [B], tryNow: [B], resolved: [] },
    },
    {
      name: 'tried a moment ago: waits for the retry interval',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: B, online: null },
        ],
        alerts: alert({ [B]: 'timeout' }),
      }),
      tried: { [B]: { at: 9_500, attempts: 1, heartbeat: false } },
      expect: { pending: [B], tryNow: [], resolved: [] },
    },
    {
      name: 'unreachable four times in a row: the pause has doubled (8 s), not tried after 5 s',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: B, online: null },
        ],
        alerts: alert({ [B]: 'timeout' }),
      }),
      tried: { [B]: { at: 5_000, attempts: 4, heartbeat: false } },
      expect: { pending: [B], tryNow: [], resolved: [] },
    },
    {
      name: 'its heartbeat came back since the last try: tried at once, whatever the pause',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: B, online: { masterNode: M, at: 6000 } },
        ],
        alerts: alert({ [B]: 'timeout' }),
      }),
      tried: { [B]: { at: 9_900, attempts: 6, heartbeat: false } },
      expect: { pending: [B], tryNow: [B], resolved: [] },
    },
    {
      name: 'B back, its fresh heartbeat names the master: resolved',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: B, online: follows },
        ],
        alerts: alert({ [B]: 'timeout' }),
      }),
      expect: { pending: [], tryNow: [], resolved: [B] },
    },
    {
      name: 'B back but still on the old master: pending, tried now',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: B, online: { masterNode: M, at: 6000 } },
        ],
        alerts: alert({ [B]: 'timeout' }),
      }),
      expect: { pending: [B], tryNow: [B], resolved: [] },
    },
    {
      name: 'no alert, but a fresh heartbeat names another master: pending',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: C, online: { masterNode: M, at: 6000 } },
        ],
      }),
      expect: { pending: [C], tryNow: [C], resolved: [] },
    },
    {
      name: 'a heartbeat from before the master change is not trusted either way',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: C, online: { masterNode: M, at: 4000 } },
        ],
      }),
      expect: null,
    },
    {
      name: 'the old master has a rejoin pending: its rejoin re-points it, not this',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: M, online: { masterNode: B, at: 6000 }, rejoin: true },
        ],
      }),
      expect: null,
    },
    {
      name: 'listed nodes that left the group or became master: resolved',
      spec: after({
        members: [
          { node: A, online: { role: 'master' } },
          { node: B, online: follows },
        ],
        alerts: alert({ [A]: 'x', [C]: 'y' }),
      }),
      expect: { pending: [], tryNow: [], resolved: [A, C] },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const p = planRepoint(view(c.spec), {
        now: 10_000,
        tried: new Map(Object.entries(c.tried ?? {})),
        retryMs: 1000,
      });
      if (c.expect === null) return assert.equal(p, null);
      assert.ok(p !== null);
      assert.deepEqual(
        {
          pending: Object.keys(p.pending).sort(),
          tryNow: [...p.tryNow].sort(),
          resolved: [...p.resolved].sort(),
        },
        c.expect,
      );
    });
});

describe('repointVerdict', () => {
  const r = (p: ReturnType<typeof pos>): ReachablePosition => p as ReachablePosition;
  const cases: ReadonlyArray<readonly [string, string, ReachablePosition, string]> = [
    [
      'replicates from the master, SQL running: follows',
      '0-2-20',
      r(pos('0-2-15', { master: A })),
      'follows',
    ],
    ['on the old master, behind the new one: re-point', '0-2-20', r(pos('0-1-10', { master: M })), 'repoint'],
    ['equal to the master: re-point', '0-1-10', r(pos('0-1-10', { master: M })), 'repoint'],
    ['not replicating at all, behind: re-point', '0-2-20', r(pos('0-1-5', { master: null })), 'repoint'],
    [
      'received more than the master holds: diverged, left to a person',
      '0-2-20',
      r(pos('0-1-25', { master: M })),
      'diverged',
    ],
    [
      'an errant local write at its tip: diverged',
      '0-2-20',
      r(pos('0-1-10', { master: M, binlog: '0-99-11', serverId: 99 })),
      'diverged',
    ],
    [
      'configured for the master, its SQL thread stopped: left to the read pool, never interrupted',
      '0-2-20',
      r(pos('0-2-15', { master: A, sql: false })),
      'follows',
    ],
  ];
  for (const [name, masterPos, p, want] of cases)
    it(name, () => assert.equal(repointVerdict(A, masterPos, p).kind, want));
});

describe('nextTryAt: the pause between tries of an unreachable node', () => {
  const cases: ReadonlyArray<readonly [string, RepointTry | undefined, boolean, number]> = [
    ['never tried: now', undefined, false, -Infinity],
    ['one failed try: one interval', { at: 1000, attempts: 1, heartbeat: false }, false, 2000],
    ['three in a row: four intervals', { at: 1000, attempts: 3, heartbeat: false }, false, 5000],
    ['many in a row: at most a minute', { at: 1000, attempts: 40, heartbeat: false }, false, 61_000],
    ['the heartbeat is back since: now', { at: 1000, attempts: 9, heartbeat: false }, true, -Infinity],
    [
      'it had a heartbeat then already: the pause holds',
      { at: 1000, attempts: 1, heartbeat: true },
      true,
      2000,
    ],
  ];
  for (const [name, t, hb, want] of cases) it(name, () => assert.equal(nextTryAt(t, hb, 1000), want));
});
