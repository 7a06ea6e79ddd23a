import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderGroupStatus } from '../../cli/status';
import { buildGroupStatus } from '../../core/status';
import { diagnoseRecords, repairEpoch, restoreMaster, type MasterEvidence } from '../../core/repair';
import type { GroupView } from '../../core/view';
import { detect } from '../../server/detect';
import { A, B, M, view, type ViewSpec } from './server-fixtures';

/** Issue 11, hole 7: what is wrong with master/ and haproxy/, and who fixes it (core/repair.ts). */
const members = [{ node: M, online: {} }, { node: A }, { node: B }];
const routeInvalid = (v: GroupView): GroupView => ({
  ...v,
  route: null,
  invalid: { ...v.invalid, route: true },
  problems: [{ path: '/mha/haproxy/g1', message: 'write: must be host:port' }],
});
const masterInvalid = (v: GroupView): GroupView => ({
  ...v,
  master: null,
  invalid: { ...v.invalid, master: true },
  problems: [{ path: '/mha/master/g1', message: 'not UTF-8 JSON' }],
});

describe('diagnoseRecords', () => {
  const cases: ReadonlyArray<{
    readonly name: string;
    readonly spec: ViewSpec;
    readonly edit?: (v: GroupView) => GroupView;
    /** Expected finding kind and repairer, or null: nothing to say. */
    readonly expect: readonly [string, 'worker' | 'operator'] | null;
    readonly fix?: RegExp;
  }> = [
    { name: 'route serves master/ at its epoch: nothing', spec: { members }, expect: null },
    {
      name: 'an invalid route (the issue 11 example): the workers rewrite it from master/',
      spec: { members },
      edit: routeInvalid,
      expect: ['route-invalid', 'worker'],
      fix: /rewrite haproxy\/g1 from master\/g1 \(write 10\.0\.0\.1:3306\) at a new epoch/,
    },
    {
      name: 'an invalid route of a dead master: rewritten with writes cut, so the failover can run',
      spec: { members: [{ node: M, online: null }, { node: A }, { node: B }] },
      edit: routeInvalid,
      expect: ['route-invalid', 'worker'],
      fix: /write null: its heartbeat is gone, a failover follows/,
    },
    {
      name: 'no route at all while master/ names a node',
      spec: { members },
      edit: (v) => ({ ...v, route: null }),
      expect: ['route-missing', 'worker'],
    },
    {
      name: 'a valid route that writes to another member',
      spec: { members, write: A },
      expect: ['route-stale', 'worker'],
    },
    {
      name: 'a valid route far above the master epoch (epoch 99)',
      spec: { members, routeEpoch: 99 },
      expect: ['route-stale', 'worker'],
    },
    {
      name: 'a route with writes cut and no operation open (a leftover fence)',
      spec: { members, write: null, routeEpoch: 2 },
      expect: ['route-stale', 'worker'],
    },
    {
      name: 'a dead master with a stale route within the next epoch: the failover writes the route',
      spec: { members: [{ node: M, online: null }, { node: A }, { node: B }], write: null, routeEpoch: 2 },
      expect: null,
    },
    {
      name: 'a dead master with a route beyond the next epoch: repaired (else the failover stops)',
      spec: { members: [{ node: M, online: null }, { node: A }, { node: B }], routeEpoch: 7 },
      expect: ['route-stale', 'worker'],
    },
    {
      name: 'an operation is open: its fence is the route it wants',
      spec: { members, write: null, routeEpoch: 2, task: { kind: 'switchover' } },
      expect: null,
    },
    {
      name: 'maintenance: alert only, the fix names setmaster --reroute',
      spec: { members, write: A, white: true },
      expect: ['route-stale', 'operator'],
      fix: /mha setmaster g1 10\.0\.0\.1:3306 --reroute/,
    },
    {
      name: 'an invalid master/: restored by the workers from history',
      spec: { members },
      edit: masterInvalid,
      expect: ['master-invalid', 'worker'],
      fix: /from the last master change in history\/g1/,
    },
    {
      name: 'no master/ at all: a group not set up yet, nothing to say',
      spec: { members, master: null },
      expect: null,
    },
    {
      name: 'a Galera group: its writer is kept elsewhere',
      spec: { members, write: A },
      edit: (v) => ({ ...v, meta: { ...v.meta!, flavor: 'galera' } }),
      expect: null,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const v = (c.edit ?? ((x: GroupView) => x))(view(c.spec));
      const d = diagnoseRecords(v);
      if (c.expect === null) return assert.equal(d, null);
      assert.ok(d !== null);
      assert.deepEqual([d.finding.kind, d.repair.by], c.expect);
      if (c.fix !== undefined) assert.match(d.fix, c.fix);
      // detect says the same: a repair verdict, never a failover or "not managed".
      assert.equal(detect(v, { now: 10_000 }).kind, 'records-invalid');
    });
});

describe('repairEpoch: above every epoch in use', () => {
  const cases: ReadonlyArray<readonly [string, Parameters<typeof repairEpoch>[0], number]> = [
    ['master and route agree', { masterEpoch: 4, routeEpoch: 4, routerEpochs: [4] }, 5],
    [
      'a router applied a higher route earlier',
      { masterEpoch: 4, routeEpoch: null, routerEpochs: [4, 9] },
      10,
    ],
    ['a valid route far ahead', { masterEpoch: 1, routeEpoch: 99, routerEpochs: [1] }, 100],
    [
      'master/ invalid: history and routers',
      { masterEpoch: null, routeEpoch: null, historyEpoch: 6, routerEpochs: [3] },
      7,
    ],
    ['nothing known', { masterEpoch: null, routeEpoch: null, routerEpochs: [] }, 1],
  ];
  for (const [name, input, want] of cases) it(name, () => assert.equal(repairEpoch(input), want));
});

describe('restoreMaster: only when the evidence agrees', () => {
  const base: MasterEvidence = {
    history: { node: A, epoch: 3 },
    route: { node: A, epoch: 3 },
    writableMasters: [A],
    members: [M, A, B],
  };
  const cases: ReadonlyArray<readonly [string, Partial<MasterEvidence>, string | null]> = [
    ['history, route and heartbeat name the same node', {}, A],
    ['history alone (route invalid), no heartbeat against it', { route: null, writableMasters: [] }, A],
    ['the route alone (no history yet)', { history: null }, A],
    ['history and route disagree', { route: { node: B, epoch: 4 } }, null],
    ['another member says writable master', { writableMasters: [A, B] }, null],
    [
      'the named node is no member any more',
      { history: { node: '10.9.9.9:3306', epoch: 3 }, route: null },
      null,
    ],
    ['no evidence at all', { history: null, route: null }, null],
  ];
  for (const [name, over, want] of cases)
    it(name, () => {
      const r = restoreMaster({ ...base, ...over });
      if (want === null) assert.equal(r.kind, 'cannot');
      else assert.deepEqual(r.kind === 'restore' ? r.node : r, want);
    });
});

describe('mha status says what is wrong with the records and what will fix it', () => {
  it('an invalid route: INVALID with the reason, and that the workers rewrite it from master/', () => {
    const v = routeInvalid(view({ members }));
    const g = buildGroupStatus(v, new Map(), [], null);
    assert.equal(g.records?.finding.kind, 'route-invalid');
    const text = renderGroupStatus(g, 10_000);
    assert.match(text, /route: {2}INVALID \(write: must be host:port\)/);
    assert.match(
      text,
      /! haproxy\/g1 is invalid .* — will be repaired: the server workers rewrite haproxy\/g1 from master\/g1/,
    );
  });
  it('an invalid master/ under maintenance: INVALID, and the command that fixes it', () => {
    const v = masterInvalid(view({ members, white: true }));
    const text = renderGroupStatus(buildGroupStatus(v, new Map(), [], null), 10_000);
    assert.match(text, /master: INVALID \(not UTF-8 JSON\)/);
    assert.match(text, /not repaired automatically: maintenance is on .*mha setmaster g1 <node> --reroute/);
  });
  it('consistent records: nothing said', () => {
    assert.equal(buildGroupStatus(view({ members }), new Map(), [], null).records, null);
  });
});
