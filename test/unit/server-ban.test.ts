import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chooseCandidate } from '../../core/candidate';
import type { HistoryRecord, MetaHost } from '../../core/records';
import { bannedMembers, decideBan } from '../../server/ban';
import { detect } from '../../server/detect';
import { A, B, M, pos, view } from './server-fixtures';

/** Issue 11, hole 5: a node that keeps failing is banned from candidacy (server/ban.ts). */
const HOUR = 3_600_000;
const NOW = 10 * HOUR;
const failover = (epoch: number, from: string, to: string, endedAt: number): HistoryRecord => ({
  v: 1,
  kind: 'failover',
  from,
  to,
  epoch,
  startedAt: endedAt - 500,
  endedAt,
  steps: [],
  detail: {},
});
const host = (node: string, banned = false): MetaHost => ({
  v: 1,
  group: 'g1',
  host: node.split(':')[0]!,
  port: 3306,
  priority: 1,
  ...(banned ? { banned: { at: 1, epochs: [2], windowMs: HOUR, by: 'server:s1' } } : {}),
});

describe('decideBan', () => {
  const cases: ReadonlyArray<{
    readonly name: string;
    readonly n: number;
    readonly windowMs?: number;
    readonly events: readonly HistoryRecord[];
    readonly epoch: number;
    readonly banned?: boolean;
    readonly expect: readonly number[] | null;
  }> = [
    {
      name: 'M failed over three times within the hour: banned (epochs listed)',
      n: 3,
      events: [
        failover(6, M, A, NOW - 1000),
        failover(4, M, B, NOW - 20 * 60_000),
        failover(2, M, A, NOW - 50 * 60_000),
      ],
      epoch: 6,
      expect: [2, 4, 6],
    },
    {
      name: 'only twice within the hour, the third is older: not banned',
      n: 3,
      events: [
        failover(6, M, A, NOW - 1000),
        failover(4, M, B, NOW - 20 * 60_000),
        failover(2, M, A, NOW - 2 * HOUR),
      ],
      epoch: 6,
      expect: null,
    },
    {
      name: 'failovers away from other nodes do not count against M',
      n: 2,
      events: [failover(6, M, A, NOW - 1000), failover(5, A, M, NOW - 2000), failover(4, B, A, NOW - 3000)],
      epoch: 6,
      expect: null,
    },
    {
      name: 'the node the last failover left is the one judged (A here)',
      n: 2,
      events: [failover(7, A, B, NOW - 1000), failover(5, A, M, NOW - 5000), failover(6, M, A, NOW - 3000)],
      epoch: 7,
      expect: [5, 7],
    },
    {
      name: 'banAfterFailovers 1: the first failover bans',
      n: 1,
      events: [failover(2, M, A, NOW - 1000)],
      epoch: 2,
      expect: [2],
    },
    {
      name: 'banAfterFailovers 0: banning is off',
      n: 0,
      events: [failover(2, M, A, NOW - 1000)],
      epoch: 2,
      expect: null,
    },
    {
      name: 'already banned: nothing new',
      n: 1,
      events: [failover(2, M, A, NOW - 1000)],
      epoch: 2,
      banned: true,
      expect: null,
    },
    {
      name: 'no failover event at this epoch (a switchover made it): nothing',
      n: 1,
      events: [failover(2, M, A, NOW - 1000)],
      epoch: 3,
      expect: null,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const d = decideBan({
        settings: { banAfterFailovers: c.n, banWindowMs: c.windowMs ?? HOUR },
        epoch: c.epoch,
        events: c.events,
        host: (n) => host(n, c.banned === true),
        now: NOW,
      });
      if (c.expect === null) return assert.equal(d.kind, 'none', JSON.stringify(d));
      assert.equal(d.kind, 'ban');
      assert.deepEqual(d.kind === 'ban' ? d.epochs : null, c.expect);
    });
});

describe('a banned node is never a candidate', () => {
  const members = [
    { node: M, online: null },
    { node: A, banned: [2, 4, 6] },
    { node: B, priority: 2 as const },
  ];
  it('the priority-1 replica is banned: the priority-2 one is chosen although they are equal', () => {
    const c = chooseCandidate(
      view({ members }),
      new Map([
        [A, pos('0-1-10')],
        [B, pos('0-1-10')],
      ]),
    );
    assert.equal(c.kind === 'chosen' ? c.node : c.kind, B);
    assert.match(
      c.assessments.find((a) => a.node === A)!.why,
      /banned after 3 failovers \(mha unban 10\.0\.0\.2:3306\)/,
    );
  });
  it('a banned replica that received more is still the catch-up source, so nothing is lost', () => {
    const c = chooseCandidate(
      view({ members }),
      new Map([
        [A, pos('0-1-12')],
        [B, pos('0-1-10')],
      ]),
    );
    assert.ok(c.kind === 'chosen');
    assert.deepEqual([c.node, c.catchUpFrom?.node], [B, A]);
  });
  it('every replica banned: no-candidate', () => {
    const v = view({
      members: [
        { node: M, online: null },
        { node: A, banned: [2] },
        { node: B, banned: [3] },
      ],
    });
    assert.equal(
      detect(v, { now: NOW, probe: { kind: 'refused', error: 'ECONNREFUSED' } }).kind,
      'no-candidate',
    );
  });
  it('bannedMembers lists what the node-banned alert shows', () => {
    assert.deepEqual(bannedMembers(view({ members })), { [A]: { at: 1, epochs: [2, 4, 6] } });
  });
});
