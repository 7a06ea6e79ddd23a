import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AGENT_BACKED_CONFIRM_MS,
  confirmBudgetMs,
  detect,
  probeFrom,
  readOnlyMasterKey,
  type MasterProbe,
  type Observations,
  type VerdictKind,
} from '../../server/detect';
import { A, B, M, view, type ViewSpec } from './server-fixtures';

const NOW = 1_000_000;
const refused: MasterProbe = { kind: 'refused', error: 'ECONNREFUSED' };
const silent: MasterProbe = { kind: 'unreachable', error: 'connect timed out' };
const alive: MasterProbe = { kind: 'alive', readOnly: false, detail: 'answered a query' };
const masterGone = { node: M, online: null } as const;
const replicas = [
  { node: A, priority: 1 as const },
  { node: B, priority: 2 as const },
];

interface Case {
  readonly name: string;
  readonly spec: ViewSpec;
  readonly probe?: MasterProbe;
  readonly expect: VerdictKind;
  readonly how?: string;
}

const cases: Case[] = [
  { name: 'master online: healthy', spec: { members: [{ node: M }, ...replicas] }, expect: 'master-healthy' },
  {
    name: 'heartbeat gone, not probed yet: confirm first',
    spec: { members: [masterGone, ...replicas] },
    expect: 'needs-confirmation',
  },
  {
    name: 'heartbeat gone, connection refused: dead',
    spec: { members: [masterGone, ...replicas] },
    probe: refused,
    expect: 'master-dead',
    how: 'refused',
  },
  {
    name: 'heartbeat gone, no answer within confirmMs: dead',
    spec: { members: [masterGone, ...replicas] },
    probe: silent,
    expect: 'master-dead',
    how: 'unreachable',
  },
  {
    name: 'agent alive and says mysqld down: dead without any probe',
    spec: { members: [{ node: M, online: null, agent: { mysqldDown: true } }, ...replicas] },
    expect: 'master-dead',
    how: 'agent-reports-down',
  },
  {
    name: 'agent alive without mysqldDown: still confirm',
    spec: { members: [{ node: M, online: null, agent: {} }, ...replicas] },
    expect: 'needs-confirmation',
  },
  {
    name: 'heartbeat gone but mysqld answers: alert only',
    spec: { members: [masterGone, ...replicas] },
    probe: alive,
    expect: 'heartbeat-lost-mysql-alive',
  },
  {
    name: 'heartbeat gone, mysqld answers but read-only (self-fenced): failed over',
    spec: { members: [masterGone, ...replicas] },
    probe: { kind: 'alive', readOnly: true, detail: 'answered a query' },
    expect: 'master-dead',
    how: 'self-fenced',
  },
  {
    name: 'heartbeat gone, mysqld answers with an error (read_only unknown): alert only',
    spec: { members: [masterGone, ...replicas] },
    probe: { kind: 'alive', readOnly: null, detail: 'answered with an error' },
    expect: 'heartbeat-lost-mysql-alive',
  },
  {
    name: 'white-listed: nothing, not even a probe',
    spec: { members: [masterGone, ...replicas], white: true },
    expect: 'white-listed',
  },
  {
    name: 'white-listed wins over a refused probe',
    spec: { members: [masterGone, ...replicas], white: true },
    probe: refused,
    expect: 'white-listed',
  },
  {
    name: 'recent unacknowledged failover: blocked',
    spec: {
      members: [masterGone, ...replicas],
      epoch: 2,
      masterReason: 'failover',
      masterSince: NOW - 10_000,
      alerts: [{ kind: 'failover', detail: { epoch: 2 } }],
    },
    probe: refused,
    expect: 'blocked-by-antiflap',
  },
  {
    name: 'recent failover, acknowledged (alert deleted): proceeds',
    spec: {
      members: [masterGone, ...replicas],
      epoch: 2,
      masterReason: 'failover',
      masterSince: NOW - 10_000,
    },
    probe: refused,
    expect: 'master-dead',
  },
  {
    name: 'failover older than recoveryBlockSeconds: proceeds',
    spec: {
      members: [masterGone, ...replicas],
      epoch: 2,
      masterReason: 'failover',
      masterSince: NOW - 301_000,
      alerts: [{ kind: 'failover', detail: { epoch: 2 } }],
    },
    probe: refused,
    expect: 'master-dead',
  },
  {
    name: 'the alert of an older failover does not block',
    spec: {
      members: [masterGone, ...replicas],
      epoch: 3,
      masterReason: 'failover',
      masterSince: NOW - 10_000,
      alerts: [{ kind: 'failover', detail: { epoch: 2 } }],
    },
    probe: refused,
    expect: 'master-dead',
  },
  {
    name: 'a recent switchover does not block',
    spec: {
      members: [masterGone, ...replicas],
      epoch: 2,
      masterReason: 'switchover',
      masterSince: NOW - 10_000,
      alerts: [{ kind: 'failover', detail: { epoch: 2 } }],
    },
    probe: refused,
    expect: 'master-dead',
  },
  {
    name: 'custom block period from the group settings',
    spec: {
      members: [masterGone, ...replicas],
      epoch: 2,
      masterReason: 'failover',
      masterSince: NOW - 10_000,
      settings: { recoveryBlockSeconds: 5 },
      alerts: [{ kind: 'failover', detail: { epoch: 2 } }],
    },
    probe: refused,
    expect: 'master-dead',
  },
  {
    name: 'only priority-0 replicas: no candidate',
    spec: { members: [masterGone, { node: A, priority: 0 }] },
    probe: refused,
    expect: 'no-candidate',
  },
  {
    name: 'no replica at all: no candidate',
    spec: { members: [masterGone] },
    probe: refused,
    expect: 'no-candidate',
  },
  {
    name: 'a failover task exists: resume it',
    spec: { members: [masterGone, ...replicas], task: { kind: 'failover', step: 'drain' } },
    expect: 'resume-failover',
  },
  {
    name: 'a failover task wins even if the old master is back',
    spec: { members: [{ node: M }, ...replicas], task: { kind: 'failover' } },
    expect: 'resume-failover',
  },
  {
    name: 'a CLI switchover in progress: hands off',
    spec: { members: [masterGone, ...replicas], task: { kind: 'switchover' } },
    expect: 'operation-in-progress',
  },
  {
    name: 'no master record: not managed',
    spec: { members: [{ node: M }, ...replicas], master: null },
    expect: 'not-managed',
  },
];

describe('detect', () => {
  for (const c of cases) {
    it(c.name, () => {
      const obs: Observations = { now: NOW, ...(c.probe ? { probe: c.probe } : {}) };
      const v = detect(view(c.spec), obs);
      assert.equal(v.kind, c.expect, JSON.stringify(v));
      if (c.how !== undefined) assert.equal('how' in v ? v.how : undefined, c.how);
    });
  }

  it('invalid records are never acted on; an invalid master/ or haproxy/ is a repair, never a failover', () => {
    const base = view({ members: [masterGone, ...replicas] });
    for (const [field, kind] of [
      ['meta', 'not-managed'],
      ['master', 'records-invalid'],
      ['route', 'records-invalid'],
      ['task', 'not-managed'],
    ] as const) {
      const v = detect(
        { ...base, invalid: { ...base.invalid, [field]: true } },
        { now: NOW, probe: refused },
      );
      assert.equal(v.kind, kind, field);
    }
    const w = detect({ ...base, invalid: { ...base.invalid, white: true } }, { now: NOW, probe: refused });
    assert.equal(w.kind, 'white-listed', 'an unreadable white record still holds automation back');
  });
});

describe('detect: a master whose heartbeat says read-only', () => {
  const roMaster = { node: M, online: { readOnly: true, role: 'none' as const } };
  interface RoCase {
    readonly name: string;
    readonly spec: ViewSpec;
    /** How long ago the worker first saw it read-only (undefined: not tracked). */
    readonly seenMsAgo?: number;
    readonly expect: VerdictKind;
    readonly white?: boolean;
  }
  const roCases: RoCase[] = [
    {
      name: 'read-only past the grace: master-read-only',
      spec: { members: [roMaster, ...replicas] },
      seenMsAgo: 1500,
      expect: 'master-read-only',
      white: false,
    },
    {
      name: 'exactly at the grace: master-read-only',
      spec: { members: [roMaster, ...replicas] },
      seenMsAgo: 1000,
      expect: 'master-read-only',
    },
    {
      name: 'read-only within the grace (a transition the agent may be in): healthy for now',
      spec: { members: [roMaster, ...replicas] },
      seenMsAgo: 300,
      expect: 'master-healthy',
    },
    {
      name: 'read-only but not tracked by the caller: healthy',
      spec: { members: [roMaster, ...replicas] },
      expect: 'master-healthy',
    },
    {
      name: 'writable master, however long tracked: healthy',
      spec: { members: [{ node: M }, ...replicas] },
      seenMsAgo: 60_000,
      expect: 'master-healthy',
    },
    {
      name: 'read-only while white-listed: master-read-only, flagged white (alert only)',
      spec: { members: [roMaster, ...replicas], white: true },
      seenMsAgo: 5000,
      expect: 'master-read-only',
      white: true,
    },
    {
      name: 'read-only while a switchover is open (its own fence): the operation',
      spec: { members: [roMaster, ...replicas], task: { kind: 'switchover' } },
      seenMsAgo: 5000,
      expect: 'operation-in-progress',
    },
    {
      name: 'read-only while a failover is open: resume it',
      spec: { members: [roMaster, ...replicas], task: { kind: 'failover' } },
      seenMsAgo: 5000,
      expect: 'resume-failover',
    },
  ];
  for (const c of roCases) {
    it(c.name, () => {
      const obs: Observations = {
        now: NOW,
        readOnlyGraceMs: 1000,
        ...(c.seenMsAgo !== undefined ? { masterReadOnlySince: NOW - c.seenMsAgo } : {}),
      };
      const v = detect(view(c.spec), obs);
      assert.equal(v.kind, c.expect, JSON.stringify(v));
      if (v.kind === 'master-read-only') {
        assert.equal(v.master, M);
        assert.equal(v.since, NOW - c.seenMsAgo!);
        if (c.white !== undefined) assert.equal(v.white, c.white);
      }
    });
  }

  it('readOnlyMasterKey: set only for a read-only master with no task open', () => {
    const rows: Array<[string, ViewSpec, string | null]> = [
      ['read-only master', { members: [roMaster, ...replicas], epoch: 4 }, `${M}@4`],
      ['writable master', { members: [{ node: M }, ...replicas] }, null],
      ['master offline', { members: [masterGone, ...replicas] }, null],
      ['task open', { members: [roMaster, ...replicas], task: { kind: 'switchover' } }, null],
      ['no master record', { members: [roMaster, ...replicas], master: null }, null],
    ];
    for (const [name, spec, key] of rows) assert.equal(readOnlyMasterKey(view(spec)), key, name);
  });
});

describe('probeFrom', () => {
  const rows: Array<[Parameters<typeof probeFrom>[0], MasterProbe['kind']]> = [
    [{ ok: true, readOnly: false }, 'alive'],
    [{ ok: false, kind: 'refused', error: 'ECONNREFUSED' }, 'refused'],
    [{ ok: false, kind: 'auth', error: 'Access denied' }, 'alive'],
    [{ ok: false, kind: 'timeout', error: 'timeout' }, 'unreachable'],
    [{ ok: false, kind: 'other', error: 'reset' }, 'unreachable'],
  ];
  for (const [input, kind] of rows)
    it(`${JSON.stringify(input)} → ${kind}`, () => assert.equal(probeFrom(input).kind, kind));
});

describe('confirmation budget (issue 11 hole 2)', () => {
  it('no agent report: the group confirmMs', () => assert.equal(confirmBudgetMs(1500, undefined), 1500));
  it('agent reports its mysqld silent: only the server-side check', () =>
    assert.equal(confirmBudgetMs(1500, 700), AGENT_BACKED_CONFIRM_MS));
  it('never longer than confirmMs', () => assert.equal(confirmBudgetMs(200, 700), 200));
  it('detect carries it on needs-confirmation', () => {
    const spec = { members: [{ node: M, online: null, agent: { unansweredMs: 650 } }, ...replicas] };
    const silent = detect(view(spec), { now: 0 });
    assert.equal(silent.kind, 'needs-confirmation');
    if (silent.kind === 'needs-confirmation') assert.equal(silent.confirmMs, AGENT_BACKED_CONFIRM_MS);
  });
});
