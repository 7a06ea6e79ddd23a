import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chooseCandidate, type NodePosition } from '../../core/candidate';
import { A, B, C, M, pos, unreachable, view, type MemberSpec } from './server-fixtures';

interface Case {
  readonly name: string;
  readonly members: readonly MemberSpec[];
  readonly positions: Readonly<Record<string, NodePosition>>;
  readonly exclude?: readonly string[];
  /** Expected node, or `none:<reason>`. */
  readonly expect: string;
  readonly catchUpFrom?: string | null;
  /** Substring expected in the reason/detail. */
  readonly because?: RegExp;
}

const master: MemberSpec = { node: M, priority: 1, dc: 'eu' };

const cases: Case[] = [
  {
    name: 'the replica that received the most wins, whatever its name or priority',
    members: [master, { node: A, priority: 1 }, { node: B, priority: 2 }],
    positions: { [A]: pos('0-1-10'), [B]: pos('0-1-12') },
    expect: B,
  },
  {
    name: 'received position counts, not applied: a lagging SQL thread does not lose',
    members: [master, { node: A }, { node: B }],
    positions: { [A]: pos('0-1-20', { slave: '0-1-5' }), [B]: pos('0-1-19', { slave: '0-1-19' }) },
    expect: A,
  },
  {
    name: 'equal GTIDs: priority 1 beats priority 2',
    members: [master, { node: A, priority: 2 }, { node: B, priority: 1 }],
    positions: { [A]: pos('0-1-10'), [B]: pos('0-1-10') },
    expect: B,
    because: /tie among 2 broken by priority 1/,
  },
  {
    name: 'equal GTIDs and priority: same data centre as the old master wins',
    members: [master, { node: A, dc: 'us' }, { node: B, dc: 'eu' }],
    positions: { [A]: pos('0-1-10'), [B]: pos('0-1-10') },
    expect: B,
    because: /same data centre/,
  },
  {
    name: 'full tie: the lowest name wins',
    members: [master, { node: C }, { node: A }, { node: B }],
    positions: { [A]: pos('0-1-10'), [B]: pos('0-1-10'), [C]: pos('0-1-10') },
    expect: A,
  },
  {
    name: 'priority 0 is never promoted, even when most advanced; the winner catches up from it',
    members: [master, { node: A, priority: 0 }, { node: B, priority: 2 }],
    positions: { [A]: pos('0-1-30'), [B]: pos('0-1-10') },
    expect: B,
    catchUpFrom: A,
  },
  {
    name: 'all candidates ineligible: priority 0, unreachable, no meta_host',
    members: [master, { node: A, priority: 0 }, { node: B }, { node: C, noHost: true }],
    positions: { [A]: pos('0-1-30'), [B]: unreachable(), [C]: pos('0-1-30') },
    expect: 'none:no-eligible-replica',
    because: /priority 0.*unreachable.*no meta_host/,
  },
  {
    name: 'a group without replicas has no candidate',
    members: [master],
    positions: {},
    expect: 'none:no-eligible-replica',
    because: /no replica/,
  },
  {
    name: 'errant local writes make a replica ineligible (and no catch-up source)',
    members: [master, { node: A }, { node: B }],
    positions: { [A]: pos('0-1-10', { binlog: '0-7-11', serverId: 7 }), [B]: pos('0-1-9') },
    expect: B,
    catchUpFrom: null,
  },
  {
    name: 'diverged positions among eligible replicas: no automatic choice',
    members: [master, { node: A }, { node: B }],
    positions: { [A]: pos('0-1-10,1-1-5'), [B]: pos('0-1-11,1-1-4') },
    expect: 'none:diverged-positions',
  },
  {
    name: 'same seq from different servers is a divergence, not a tie',
    members: [master, { node: A }, { node: B }],
    positions: { [A]: pos('0-1-10'), [B]: pos('0-2-10') },
    expect: 'none:diverged-positions',
  },
  {
    name: 'a replica of another master is not a candidate',
    members: [master, { node: A }, { node: B }],
    positions: { [A]: pos('0-1-40', { master: C }), [B]: pos('0-1-10') },
    expect: B,
    catchUpFrom: null,
  },
  {
    name: 'a stopped SQL thread makes it ineligible but it can still be a catch-up source',
    members: [master, { node: A }, { node: B }],
    positions: { [A]: pos('0-1-40', { sql: false }), [B]: pos('0-1-10') },
    expect: B,
    catchUpFrom: A,
  },
  {
    name: 'a stopped IO thread does not matter (the master is dead, it cannot be connected)',
    members: [master, { node: A }],
    positions: { [A]: pos('0-1-10', { io_running: false }) },
    expect: A,
  },
  {
    name: 'gtid_slave_pos ahead of an empty or stale Gtid_IO_Pos counts as received',
    members: [master, { node: A }, { node: B }],
    positions: { [A]: pos('', { slave: '0-1-15' }), [B]: pos('0-1-12') },
    expect: A,
  },
  {
    name: 'an excluded node (failed earlier) is skipped',
    members: [master, { node: A }, { node: B }],
    positions: { [A]: pos('0-1-15'), [B]: pos('0-1-12') },
    exclude: [A],
    expect: B,
    catchUpFrom: A,
  },
  {
    name: 'not a replica at all (no replication configured) is ineligible',
    members: [master, { node: A }, { node: B }],
    positions: { [A]: pos('', { slave: '0-1-50', master: null }), [B]: pos('0-1-12') },
    expect: B,
    catchUpFrom: null,
  },
  {
    name: 'equally advanced: the smallest apply backlog wins over priority, and the reason says so',
    members: [master, { node: A, priority: 1 }, { node: B, priority: 2 }],
    positions: { [A]: pos('0-1-5000', { slave: '0-1-3000' }), [B]: pos('0-1-5000', { slave: '0-1-4990' }) },
    expect: B,
    because: /smallest apply backlog \(10 transactions, vs 10\.0\.0\.2:3306: 2000\)/,
  },
  {
    name: 'backlogs within 100 transactions of each other are equal: priority decides',
    members: [master, { node: A, priority: 1 }, { node: B, priority: 2 }],
    positions: { [A]: pos('0-1-5000', { slave: '0-1-4900' }), [B]: pos('0-1-5000', { slave: '0-1-5000' }) },
    expect: A,
    because: /tie among 2 broken by priority 1/,
  },
  {
    name: 'the backlog never beats what was received: the most advanced wins with a larger backlog',
    members: [master, { node: A }, { node: B }],
    positions: { [A]: pos('0-1-5000', { slave: '0-1-1000' }), [B]: pos('0-1-4999', { slave: '0-1-4999' }) },
    expect: A,
  },
  {
    name: 'among three equally advanced, those near the smallest backlog tie; then the name',
    members: [master, { node: C }, { node: A }, { node: B }],
    positions: {
      [A]: pos('0-1-900', { slave: '0-1-100' }),
      [B]: pos('0-1-900', { slave: '0-1-850' }),
      [C]: pos('0-1-900', { slave: '0-1-880' }),
    },
    expect: B,
    because: /smallest apply backlog .*\(50 transactions, vs 10\.0\.0\.2:3306: 800\); tie among 2/,
  },
];

describe('chooseCandidate', () => {
  for (const c of cases) {
    it(c.name, () => {
      const v = view({ members: c.members });
      const choice = chooseCandidate(
        v,
        new Map(Object.entries(c.positions)),
        c.exclude ? { exclude: c.exclude } : {},
      );
      if (c.expect.startsWith('none:')) {
        assert.equal(
          choice.kind,
          'none',
          `expected no candidate, got ${choice.kind === 'chosen' ? choice.node : ''}`,
        );
        if (choice.kind === 'none') {
          assert.equal(choice.reason, c.expect.slice(5));
          if (c.because) assert.match(choice.detail, c.because);
        }
        return;
      }
      assert.equal(choice.kind, 'chosen', choice.kind === 'none' ? choice.detail : '');
      if (choice.kind !== 'chosen') return;
      assert.equal(choice.node, c.expect);
      if (c.catchUpFrom !== undefined) assert.equal(choice.catchUpFrom?.node ?? null, c.catchUpFrom);
      if (c.because) assert.match(choice.reason, c.because);
      // The old master is never assessed, every other member is.
      assert.deepEqual(
        choice.assessments.map((a) => a.node).sort(),
        c.members
          .map((m) => m.node)
          .filter((n) => n !== M)
          .sort(),
      );
    });
  }

  it('a rejoin-pending node is not promoted', () => {
    const v = view({ members: [master, { node: A, rejoin: true }, { node: B }] });
    const choice = chooseCandidate(
      v,
      new Map([
        [A, pos('0-1-20')],
        [B, pos('0-1-20')],
      ]),
    );
    assert.equal(choice.kind === 'chosen' && choice.node, B);
    assert.match(choice.assessments.find((a) => a.node === A)!.why, /rejoin pending/);
  });
});
