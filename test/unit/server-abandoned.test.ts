import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NodePosition } from '../../core/candidate';
import type { HaproxyRecord, MasterRecord, TaskRecord } from '../../core/records';
import type { LockHolder } from '../../core/zk/lock';
import {
  abandonment,
  resolveAbandoned,
  routeIsCut,
  taskKey,
  type AbandonedFacts,
  type Abandonment,
  type OrphanMark,
  type Resolution,
} from '../../server/abandoned';
import { A, B, M } from './server-fixtures';

/**
 * A switchover or add whose process died: when its task counts as abandoned, and what a worker
 * does about it (server/abandoned.ts). Old master M, candidate A, another replica B; the
 * switchover moves the group from epoch 1 to 2.
 */
const NOW = 1_000_000;
const GRACE = 2000;

function task(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    v: 1,
    id: 'switchover-1',
    kind: 'switchover',
    step: 'catchup',
    oldMaster: M,
    candidate: A,
    startedAt: 1,
    worker: 'cli:h:42',
    epoch: 2,
    detail: {},
    ...over,
  };
}

const holder: LockHolder = { owner: 'cli:h:42', at: 1, path: '/l', session: '1', waiters: 0 };

describe('abandonment: a switchover / add task nobody holds the lock for', () => {
  const t = { record: task(), version: 3 };
  const key = taskKey(t);
  const cases: Array<{
    name: string;
    task?: { record: TaskRecord; version: number };
    holder?: LockHolder | null;
    mark?: OrphanMark | null;
    selfId?: string;
    expect: Abandonment['kind'];
    until?: number;
  }> = [
    {
      name: 'a failover task: the workers resume those, not this',
      task: { record: task({ kind: 'failover', step: 'drain' }), version: 1 },
      holder: null,
      mark: { key: 'switchover-1@3', since: 0 },
      expect: 'not-applicable',
    },
    { name: 'lock held: the operation is running', holder, expect: 'owner-active' },
    {
      name: 'lock held, even long after a mark: still running',
      holder,
      mark: { key, since: 0 },
      expect: 'owner-active',
    },
    {
      name: 'first seen without holder: the grace period starts now',
      holder: null,
      mark: null,
      expect: 'grace',
      until: NOW + GRACE,
    },
    {
      name: 'same task version, within the grace period: wait',
      holder: null,
      mark: { key, since: NOW - GRACE + 1 },
      expect: 'grace',
      until: NOW + 1,
    },
    {
      name: 'same task version, grace period over: abandoned',
      holder: null,
      mark: { key, since: NOW - GRACE },
      expect: 'abandoned',
    },
    {
      name: 'the task changed since the mark (its process wrote a step): the count starts again',
      holder: null,
      mark: { key: 'switchover-1@2', since: 0 },
      expect: 'grace',
      until: NOW + GRACE,
    },
    {
      name: 'a task this worker took over itself: no grace',
      task: { record: task({ worker: 's1', step: 'abandoned-rollback' }), version: 4 },
      holder: null,
      mark: null,
      selfId: 's1',
      expect: 'abandoned',
    },
    {
      name: "another worker's takeover: grace like anyone's",
      task: { record: task({ worker: 's2', step: 'abandoned-rollback' }), version: 4 },
      holder: null,
      mark: null,
      selfId: 's1',
      expect: 'grace',
    },
    {
      name: 'an add task is judged the same way',
      task: { record: task({ kind: 'add', id: 'add-1', step: 'start replication' }), version: 2 },
      holder: null,
      mark: { key: 'add-1@2', since: NOW - GRACE - 1 },
      expect: 'abandoned',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const a = abandonment({
        task: c.task ?? t,
        holder: c.holder === undefined ? null : c.holder,
        mark: c.mark ?? null,
        now: NOW,
        graceMs: GRACE,
        selfId: c.selfId ?? 's1',
      });
      assert.equal(a.kind, c.expect, JSON.stringify(a));
      if (c.until !== undefined && a.kind === 'grace') assert.equal(a.until, c.until);
      if (a.kind === 'grace') assert.equal(a.mark.key, taskKey(c.task ?? t));
    });
  }
});

// --- resolution ----------------------------------------------------------------------------------

const OM_POS = '0-1-100';

function up(binlog: string, readOnly = true): NodePosition {
  return {
    reachable: true,
    serverId: 1,
    readOnly,
    gtidBinlogPos: binlog,
    gtidSlavePos: binlog,
    replica: null,
  };
}
const down = (error = 'connect ECONNREFUSED'): NodePosition => ({ reachable: false, error });

const master: MasterRecord = { v: 1, node: M, epoch: 1, since: 1, reason: 'add' };
const cut: HaproxyRecord = { v: 1, epoch: 2, write: null, read: [A, B] };
const uncut: HaproxyRecord = { v: 1, epoch: 1, write: M, read: [A, B] };

function facts(
  over: Partial<AbandonedFacts> & { nodes?: Record<string, NodePosition> } = {},
): AbandonedFacts {
  const { nodes, ...rest } = over;
  return {
    task: task(),
    master,
    route: cut,
    white: false,
    oldMasterOnline: true,
    positions: new Map(Object.entries(nodes ?? { [M]: up(OM_POS), [A]: up(OM_POS), [B]: up(OM_POS) })),
    ...rest,
  };
}

interface Case {
  readonly name: string;
  readonly facts: AbandonedFacts;
  readonly expect: Resolution['kind'];
  readonly why?: RegExp;
  readonly check?: (r: Resolution) => void;
}

const cases: Case[] = [
  // Before the promotion: roll back.
  {
    name: "step 'fence', route not cut yet: roll back (nothing to lose, the old master is the master)",
    facts: facts({ task: task({ step: 'fence' }), route: uncut }),
    expect: 'roll-back',
    why: /before the promotion/,
    check: (r) => assert.equal(r.kind === 'roll-back' && r.candidateReachable, true),
  },
  {
    name: "step 'catchup', writes cut, candidate read-only: roll back",
    facts: facts(),
    expect: 'roll-back',
  },
  {
    name: "step 'catchup', candidate behind the old master: still roll back (the old master has everything)",
    facts: facts({ nodes: { [M]: up(OM_POS), [A]: up('0-1-90'), [B]: up('0-1-95') } }),
    expect: 'roll-back',
  },
  {
    name: "step 'rollback' (the CLI died rolling back): roll back, even with the candidate writable",
    facts: facts({ task: task({ step: 'rollback' }), nodes: { [M]: up(OM_POS), [A]: up(OM_POS, false) } }),
    expect: 'roll-back',
  },
  {
    name: "step 'abandoned-rollback' (a worker died rolling back): roll back",
    facts: facts({ task: task({ step: 'abandoned-rollback', worker: 's2' }) }),
    expect: 'roll-back',
  },
  {
    name: 'before the promotion, the candidate holds transactions the old master lacks: alert only',
    facts: facts({ nodes: { [M]: up(OM_POS), [A]: up('0-1-100,1-3-1') } }),
    expect: 'alert-only',
    why: /holds transactions the old master .* lacks/,
    check: (r) => assert.equal(r.kind === 'alert-only' && r.retry, false),
  },
  {
    name: 'before the promotion, candidate unreachable: roll back without touching it',
    facts: facts({ nodes: { [M]: up(OM_POS), [A]: down(), [B]: up(OM_POS) } }),
    expect: 'roll-back',
    check: (r) => assert.equal(r.kind === 'roll-back' && r.candidateReachable, false),
  },
  // Old master gone before the promotion: a failover.
  {
    name: 'before the promotion, old master unreachable and its heartbeat gone: hand over to the failover',
    facts: facts({ oldMasterOnline: false, nodes: { [M]: down(), [A]: up(OM_POS), [B]: up(OM_POS) } }),
    expect: 'hand-to-failover',
    why: /unreachable .*failing over/,
  },
  {
    name: 'old master unreachable but its heartbeat is there (this worker may be cut off): retry',
    facts: facts({ oldMasterOnline: true, nodes: { [M]: down('connect ETIMEDOUT'), [A]: up(OM_POS) } }),
    expect: 'alert-only',
    why: /heartbeat is still there/,
    check: (r) => assert.equal(r.kind === 'alert-only' && r.retry, true),
  },
  {
    name: 'old master unreachable in maintenance (white): no automatic failover, retry',
    facts: facts({ white: true, oldMasterOnline: false, nodes: { [M]: down(), [A]: up(OM_POS) } }),
    expect: 'alert-only',
    why: /maintenance/,
  },
  // After the promotion began: roll forward.
  {
    name: "step 'promote', the candidate holds the old master's final position: roll forward",
    facts: facts({ task: task({ step: 'promote' }), nodes: { [M]: up(OM_POS), [A]: up(OM_POS, false) } }),
    expect: 'roll-forward',
    check: (r) => {
      assert.ok(r.kind === 'roll-forward');
      assert.equal(r.target, OM_POS);
      assert.equal(r.oldMasterReachable, true);
    },
  },
  {
    name: "step 'promote' recorded but the promotion had not run yet (candidate read-only, caught up): roll forward",
    facts: facts({ task: task({ step: 'promote' }) }),
    expect: 'roll-forward',
  },
  {
    name: "step 'catchup' but the candidate is writable (promoted before its record landed): roll forward",
    facts: facts({ nodes: { [M]: up(OM_POS), [A]: up(OM_POS, false), [B]: up(OM_POS) } }),
    expect: 'roll-forward',
    why: /is writable/,
  },
  {
    name: "step 'commit' (the commit multi failed): roll forward",
    facts: facts({ task: task({ step: 'commit' }), nodes: { [M]: up(OM_POS), [A]: up(OM_POS, false) } }),
    expect: 'roll-forward',
  },
  {
    name: "step 'abandoned-rollforward' (a worker died finishing it): roll forward",
    facts: facts({ task: task({ step: 'abandoned-rollforward', worker: 's2' }) }),
    expect: 'roll-forward',
  },
  {
    name: 'after the promotion, old master unreachable: roll forward to the recorded target',
    facts: facts({
      task: task({ step: 'promote', detail: { target: OM_POS } }),
      oldMasterOnline: false,
      nodes: { [M]: down(), [A]: up('0-1-100', false) },
    }),
    expect: 'roll-forward',
    check: (r) => {
      assert.ok(r.kind === 'roll-forward');
      assert.equal(r.target, OM_POS);
      assert.equal(r.oldMasterReachable, false);
    },
  },
  {
    name: 'after the promotion, old master unreachable and no target recorded: alert, retry',
    facts: facts({ task: task({ step: 'promote' }), nodes: { [M]: down(), [A]: up(OM_POS, false) } }),
    expect: 'alert-only',
    why: /not recorded/,
  },
  {
    name: 'after the promotion, old master unreachable, candidate lacks the recorded target: alert only',
    facts: facts({
      task: task({ step: 'promote', detail: { target: OM_POS } }),
      nodes: { [M]: down(), [A]: up('0-1-99', false) },
    }),
    expect: 'alert-only',
    why: /lacks the old master's final position/,
  },
  {
    name: 'after the promotion, the candidate lacks what the old master has: roll back instead',
    facts: facts({ task: task({ step: 'promote' }), nodes: { [M]: up(OM_POS), [A]: up('0-1-99', false) } }),
    expect: 'roll-back',
    why: /lacks the old master's final position/,
  },
  {
    name: 'after the promotion, candidate unreachable: roll back (no write was routed to it)',
    facts: facts({
      task: task({ step: 'promote' }),
      nodes: { [M]: up(OM_POS), [A]: down(), [B]: up(OM_POS) },
    }),
    expect: 'roll-back',
    why: /candidate .* is unreachable/,
    check: (r) => assert.equal(r.kind === 'roll-back' && r.candidateReachable, false),
  },
  {
    name: 'after the promotion, neither old master nor candidate answers: alert, retry',
    facts: facts({ task: task({ step: 'promote' }), nodes: { [M]: down(), [A]: down(), [B]: up(OM_POS) } }),
    expect: 'alert-only',
    why: /neither/,
    check: (r) => assert.equal(r.kind === 'alert-only' && r.retry, true),
  },
  {
    name: 'after the promotion, the old master is still writable (fencing failed): alert, retry',
    facts: facts({
      task: task({ step: 'promote' }),
      nodes: { [M]: up(OM_POS, false), [A]: up(OM_POS, false) },
    }),
    expect: 'alert-only',
    why: /still writable/,
  },
  {
    name: 'after the promotion, the route still sends writes to the old master: alert only',
    facts: facts({ task: task({ step: 'promote' }), route: uncut }),
    expect: 'alert-only',
    why: /still routes writes/,
  },
  // Nothing to resolve safely.
  {
    name: 'an add: alert only, never a guess',
    facts: facts({ task: task({ kind: 'add', step: 'start replication', oldMaster: null, epoch: 1 }) }),
    expect: 'alert-only',
    why: /mha add died at step 'start replication'/,
    check: (r) => assert.equal(r.kind === 'alert-only' && r.retry, false),
  },
  {
    name: 'master/ moved on since the switchover started: alert only',
    facts: facts({ master: { ...master, epoch: 2, node: A } }),
    expect: 'alert-only',
    why: /not the switchover's starting point/,
  },
  {
    name: 'haproxy/ beyond the switchover epoch: alert only',
    facts: facts({ route: { ...cut, epoch: 3 } }),
    expect: 'alert-only',
    why: /beyond/,
  },
  {
    name: 'master/ or haproxy/ invalid: never acted on, looked at again',
    facts: facts({ route: null, invalidRecords: true, task: task({ step: 'promote' }) }),
    expect: 'alert-only',
    why: /invalid/,
    check: (r) => assert.equal(r.kind === 'alert-only' && r.retry, true),
  },
  {
    name: 'an unknown step: alert only',
    facts: facts({ task: task({ step: 'teleport' }) }),
    expect: 'alert-only',
    why: /unknown switchover step/,
  },
  {
    name: 'a task without a candidate: alert only',
    facts: facts({ task: task({ candidate: null }) }),
    expect: 'alert-only',
    why: /names no old master, candidate or epoch/,
  },
  {
    name: 'an unparsable position: never guessed as contained',
    facts: facts({ task: task({ step: 'promote' }), nodes: { [M]: up(OM_POS), [A]: up('garbage', false) } }),
    expect: 'alert-only',
    why: /unreadable position.*cannot be compared/,
  },
];

describe('resolveAbandoned: what a worker does with an abandoned operation', () => {
  for (const c of cases) {
    it(c.name, () => {
      const r = resolveAbandoned(c.facts);
      assert.equal(r.kind, c.expect, JSON.stringify(r));
      if (c.why !== undefined) assert.match(r.why, c.why);
      c.check?.(r);
    });
  }
});

describe('routeIsCut', () => {
  it('is true only for write: null at the task epoch', () => {
    assert.equal(routeIsCut(task(), cut), true);
    assert.equal(routeIsCut(task(), uncut), false);
    assert.equal(routeIsCut(task(), { ...cut, epoch: 1 }), false);
    assert.equal(routeIsCut(task(), null), false);
    assert.equal(routeIsCut(task({ epoch: undefined }), cut), false);
  });
});
