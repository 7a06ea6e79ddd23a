import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildDesired,
  checkTarget,
  hostsToResolve,
  type AgentAddress,
  type GroupSnapshot,
  type Loaded,
} from '../../router/desired';
import { assignReadSlots, emptyGroup, type GroupState, type Slot } from '../../router/model';
import type { HaproxyRecord, MetaGroup } from '../../core/records';
import { readableEpoch } from '../../router/zk-source';

const A = '10.0.0.1:3306';
const B = '10.0.0.2:3306';
const C = '10.0.0.3:3306';
const D = 'db4.example:3306';
const slot = (node: string, addr?: string): Slot => ({
  node,
  addr: addr ?? node.split(':')[0]!,
  port: Number(node.split(':')[1]),
  // No agent/ records in these cases: no check target (see the agent cases below).
  check: null,
});

const meta = (name: string, members: string[], writePort = 13306, readPort = 13307): Loaded<MetaGroup> => ({
  kind: 'ok',
  value: {
    v: 1,
    name,
    flavor: 'mariadb',
    writePort,
    readPort,
    members,
    settings: {
      maxReadLagSeconds: 30,
      recoveryBlockSeconds: 300,
      confirmMs: 1500,
      failsafeRecheckMs: 2000,
      drainTimeoutMs: 5000,
      drainMaxMs: 600_000,
      appendTimeoutMs: 3000,
      replicaWaitMs: 2000,
      failoverTimeoutMs: 30_000,
      semiSync: 'off',
      semiSyncTimeoutMs: 1000,
      autoRejoin: false,
      banAfterFailovers: 3,
      banWindowMs: 3_600_000,
      parallelApply: { threads: 4, mode: 'optimistic', replicaFlushLogAtCommit: 2 },
    },
  },
});
const route = (epoch: number, write: string | null, read: string[]): Loaded<HaproxyRecord> => ({
  kind: 'ok',
  value: { v: 1, epoch, write, read },
});
const snap = (name: string, m: Loaded<MetaGroup>, r: Loaded<HaproxyRecord>): GroupSnapshot => ({
  name,
  meta: m,
  route: r,
});
const applied = (
  name: string,
  epoch: number | null,
  write: string | null,
  read: (string | null)[],
  ports: [number, number] = [13306, 13307],
): GroupState => ({
  ...emptyGroup(name, ports[0], ports[1], 4),
  maxReadLagSeconds: 30,
  epoch,
  write: write === null ? null : slot(write),
  read: [...read, null, null, null, null].slice(0, 4).map((n) => (n === null ? null : slot(n))),
});
const desired = (
  snapshot: GroupSnapshot[],
  previous: GroupState[] = [],
  resolved = new Map<string, string>(),
) => buildDesired({ snapshot, previous, readSlots: 4, resolved });
const readNodes = (g: GroupState | undefined) => g?.read.map((s) => s?.node ?? null);

describe('router buildDesired: what ZooKeeper wants', () => {
  it('a new group with a route gets its write node in w1 and its readers in the first slots', () => {
    const d = desired([snap('g1', meta('g1', [A, B, C]), route(3, A, [B, C]))]);
    assert.deepEqual(d.problems, []);
    assert.equal(d.groups.length, 1);
    assert.deepEqual(d.groups[0]!.write, slot(A));
    assert.deepEqual(readNodes(d.groups[0]), [B, C, null, null]);
    assert.equal(d.groups[0]!.epoch, 3);
  });

  it('a group without a route yet gets listeners with empty slots and no epoch', () => {
    const d = desired([snap('g1', meta('g1', [A]), { kind: 'absent' })]);
    assert.deepEqual(d.groups, [{ ...emptyGroup('g1', 13306, 13307, 4), maxReadLagSeconds: 30 }]);
  });

  it('write: null empties w1 and keeps the readers', () => {
    const d = desired([snap('g1', meta('g1', [A, B]), route(4, null, [B]))], [applied('g1', 3, A, [B])]);
    assert.equal(d.groups[0]!.write, null);
    assert.deepEqual(readNodes(d.groups[0]), [B, null, null, null]);
    assert.equal(d.groups[0]!.epoch, 4);
  });

  it('a route with a lower epoch than applied is ignored and reported', () => {
    const prev = applied('g1', 5, A, [B]);
    const d = desired([snap('g1', meta('g1', [A, B]), route(4, B, []))], [prev]);
    assert.deepEqual(d.groups, [prev]);
    assert.equal(d.problems[0]!.kind, 'stale-epoch');
    assert.equal(d.problems[0]!.group, 'g1');
  });

  it('the same epoch with a different read pool is applied (read-pool changes keep the epoch)', () => {
    const d = desired([snap('g1', meta('g1', [A, B, C]), route(5, A, [C]))], [applied('g1', 5, A, [B])]);
    assert.deepEqual(readNodes(d.groups[0]), [null, C, null, null]);
    assert.deepEqual(d.problems, []);
  });

  it('a route with a lower epoch is ignored even when it is otherwise good (and so is its write: null)', () => {
    const prev = applied('g1', 5, A, [B]);
    const d = desired([snap('g1', meta('g1', [A, B]), route(4, null, [B]))], [prev]);
    assert.deepEqual(d.groups, [prev]);
    assert.deepEqual(
      d.problems.map((p) => [p.group, p.kind]),
      [['g1', 'stale-epoch']],
    );
  });

  /**
   * The write side follows the newest route whatever else is wrong with it (design §3, §9.1).
   * Applied before each case: epoch 5, w1 = A, r1 = B (addresses as in the node names; a host name
   * D routed before at 10.0.0.4). E is never a member; D resolves only where the case says so.
   */
  interface Case {
    readonly what: string;
    readonly meta?: Loaded<MetaGroup>;
    readonly route: Loaded<HaproxyRecord>;
    /** Default: epoch 5, A, [B]; null: nothing applied yet. */
    readonly prev?: GroupState | null;
    readonly resolved?: ReadonlyMap<string, string>;
    readonly want:
      { epoch: number | null; write: Slot | null; read: (string | null)[] } | 'unchanged' | 'gone';
    readonly problems: readonly string[];
    /** The problem messages (joined by newlines) match. */
    readonly says?: RegExp;
  }
  const E = '10.0.0.5:3306';
  const members = meta('g1', [A, B, C, D]);
  const withD = (write: string | null, read: (string | null)[]): GroupState => ({
    ...applied('g1', 5, null, []),
    write: write === null ? null : write === D ? slot(D, '10.0.0.4') : slot(write),
    read: [...read, null, null, null, null]
      .slice(0, 4)
      .map((n) => (n === null ? null : n === D ? slot(D, '10.0.0.4') : slot(n))),
  });
  const invalid = (error: string, epoch?: number): Loaded<HaproxyRecord> =>
    epoch === undefined ? { kind: 'invalid', error } : { kind: 'invalid', error, epoch };
  const cases: Case[] = [
    // -- a newer epoch: the write side always applies, bad read nodes are dropped one by one
    {
      what: 'newer epoch, write: null, a reader whose host does not resolve',
      route: route(6, null, [B, D]),
      want: { epoch: 6, write: null, read: [B, null, null, null] },
      problems: ['unresolved'],
      says: /cannot resolve db4\.example:3306; read node not routed/,
    },
    {
      what: 'newer epoch, a new master, a reader outside meta_group.members',
      route: route(6, C, [B, E]),
      want: { epoch: 6, write: slot(C), read: [B, null, null, null] },
      problems: ['unknown-node'],
      says: /10\.0\.0\.5:3306 not a member of meta_group\/g1; read node not routed/,
    },
    {
      what: 'newer epoch, a write node outside meta_group.members: writes refused, not left on A',
      route: route(6, E, [B, C]),
      want: { epoch: 6, write: null, read: [B, C, null, null] },
      problems: ['unknown-node'],
      says: /10\.0\.0\.5:3306 not a member .*writes refused/,
    },
    {
      what: 'newer epoch, a write node whose host does not resolve: writes refused',
      route: route(6, D, [B]),
      want: { epoch: 6, write: null, read: [B, null, null, null] },
      problems: ['unresolved'],
      says: /cannot resolve db4\.example:3306; write node not routed, writes refused/,
    },
    {
      what: 'newer epoch, a bad write node and a bad reader: both reported, good readers routed',
      route: route(6, E, [D, C, B]),
      want: { epoch: 6, write: null, read: [B, C, null, null] },
      problems: ['unknown-node', 'unresolved'],
    },
    {
      what: 'newer epoch, every reader bad: the read pool empties, the new master is routed',
      route: route(6, C, [E, D]),
      want: { epoch: 6, write: slot(C), read: [null, null, null, null] },
      problems: ['unknown-node', 'unresolved'],
    },
    // -- the same epoch (a fence's final write, read-pool changes) applies the same way
    {
      what: 'same epoch, write: null',
      route: route(5, null, [B]),
      want: { epoch: 5, write: null, read: [B, null, null, null] },
      problems: [],
    },
    {
      what: 'same epoch, a write node outside members: writes refused',
      route: route(5, E, [B]),
      want: { epoch: 5, write: null, read: [B, null, null, null] },
      problems: ['unknown-node'],
    },
    {
      what: 'same epoch, a read-pool change with a reader outside members',
      route: route(5, A, [C, E]),
      want: { epoch: 5, write: slot(A), read: [null, C, null, null] },
      problems: ['unknown-node'],
    },
    {
      what: 'the write node already routed stops resolving: it keeps its last address',
      prev: withD(D, [B]),
      route: route(5, D, [B, C]),
      want: { epoch: 5, write: slot(D, '10.0.0.4'), read: [B, C, null, null] },
      problems: ['unresolved'],
      says: /cannot resolve db4\.example:3306 \(keeping 10\.0\.0\.4\)$/,
    },
    {
      what: 'a reader already routed stops resolving: it keeps its slot and last address',
      prev: withD(A, [B, D]),
      route: route(6, A, [D]),
      want: { epoch: 6, write: slot(A), read: [null, D, null, null] },
      problems: ['unresolved'],
    },
    {
      what: 'a name that resolves to a new address takes it',
      prev: withD(D, []),
      resolved: new Map([['db4.example', '10.0.0.9']]),
      route: route(6, D, []),
      want: { epoch: 6, write: slot(D, '10.0.0.9'), read: [null, null, null, null] },
      problems: [],
    },
    // -- records that fail validation: nothing to apply, except that a readable newer epoch fences
    {
      what: 'an invalid route whose epoch cannot be read',
      route: invalid('not UTF-8 JSON (Unexpected end of JSON input)'),
      want: 'unchanged',
      problems: ['bad-record'],
    },
    {
      what: 'an invalid route at the applied epoch',
      route: invalid('write: must be host:port', 5),
      want: 'unchanged',
      problems: ['bad-record'],
    },
    {
      what: 'an invalid route at a lower epoch',
      route: invalid('write: must be host:port', 4),
      want: 'unchanged',
      problems: ['bad-record'],
    },
    {
      what: 'an invalid route at a newer epoch: writes refused, reads kept, epoch not advanced',
      route: invalid('write: must be host:port', 6),
      want: { epoch: 5, write: null, read: [B, null, null, null] },
      problems: ['bad-record'],
      says: /write: must be host:port; its epoch 6 is above the applied epoch 5: writes refused/,
    },
    {
      what: 'the same invalid newer-epoch route seen again once writes are refused: still says why',
      prev: applied('g1', 5, null, [B]),
      route: invalid('write: must be host:port', 6),
      want: { epoch: 5, write: null, read: [B, null, null, null] },
      problems: ['bad-record'],
      says: /write: must be host:port; its epoch 6 is above the applied epoch 5: writes refused/,
    },
    // -- an invalid meta_group: only nodes already routed are accepted, the write side still applies
    {
      what: 'invalid meta_group, newer route with the same master and a new reader',
      meta: { kind: 'invalid', error: 'writePort: must be a port' },
      route: route(6, A, [B, C]),
      want: { epoch: 6, write: slot(A), read: [B, null, null, null] },
      problems: ['bad-record', 'unknown-node'],
    },
    {
      what: 'invalid meta_group, newer route with write: null',
      meta: { kind: 'invalid', error: 'writePort: must be a port' },
      route: route(6, null, [B]),
      want: { epoch: 6, write: null, read: [B, null, null, null] },
      problems: ['bad-record'],
    },
    {
      what: 'invalid meta_group, newer route naming a master not routed before: writes refused',
      meta: { kind: 'invalid', error: 'writePort: must be a port' },
      route: route(6, C, [B]),
      want: { epoch: 6, write: null, read: [B, null, null, null] },
      problems: ['bad-record', 'unknown-node'],
    },
    {
      what: 'invalid meta_group, newer route promoting a routed reader (a failover)',
      meta: { kind: 'invalid', error: 'writePort: must be a port' },
      route: route(6, B, [A]),
      want: { epoch: 6, write: slot(B), read: [null, A, null, null] },
      problems: ['bad-record'],
    },
    {
      what: 'invalid meta_group, route at a lower epoch',
      meta: { kind: 'invalid', error: 'writePort: must be a port' },
      route: route(4, C, []),
      want: 'unchanged',
      problems: ['bad-record', 'stale-epoch'],
    },
    {
      what: 'invalid meta_group and a group never routed: no ports, no listeners',
      meta: { kind: 'invalid', error: 'writePort: must be a port' },
      prev: null,
      route: route(6, A, []),
      want: 'gone',
      problems: ['bad-record'],
    },
  ];
  for (const c of cases) {
    it(`${c.what} → ${typeof c.want === 'string' ? c.want : `w1 ${c.want.write?.node ?? 'empty'}`}`, () => {
      const prev = c.prev === undefined ? applied('g1', 5, A, [B]) : c.prev;
      const d = desired(
        [snap('g1', c.meta ?? members, c.route)],
        prev === null ? [] : [prev],
        new Map(c.resolved ?? []),
      );
      const g1 = d.groups.find((g) => g.name === 'g1');
      if (c.want === 'unchanged') assert.deepEqual(g1, prev);
      else if (c.want === 'gone') assert.equal(g1, undefined);
      else {
        assert.ok(g1, 'g1 routed');
        assert.deepEqual(
          { epoch: g1.epoch, write: g1.write, read: readNodes(g1) },
          { epoch: c.want.epoch, write: c.want.write, read: c.want.read },
        );
        assert.deepEqual([g1.writePort, g1.readPort], [13306, 13307]);
      }
      assert.deepEqual(
        d.problems.map((p) => [p.group, p.kind]),
        c.problems.map((k) => ['g1', k]),
      );
      if (c.says) assert.match(d.problems.map((p) => p.message).join('\n'), c.says);
    });
  }

  it('an invalid meta_group alone leaves the applied group as it was and is reported', () => {
    const prev = applied('g1', 5, A, [B]);
    const d = desired(
      [snap('g1', { kind: 'invalid', error: 'writePort: must be a port' }, { kind: 'absent' })],
      [prev],
    );
    assert.deepEqual(d.groups, [prev]);
    assert.deepEqual(
      d.problems.map((p) => [p.group, p.kind]),
      [['g1', 'bad-record']],
    );
  });

  describe('readableEpoch: the epoch of a route that fails validation', () => {
    const table: Array<[string, string, number | undefined]> = [
      ['a schema error keeps a readable epoch', '{"v":1,"epoch":6,"write":"x","read":[]}', 6],
      ['a newer record version', '{"v":2,"epoch":7,"write":{"node":"a:1"}}', 7],
      ['not JSON', '{"v":1,"epoch":6,"write":null', undefined],
      ['epoch as a string', '{"v":1,"epoch":"6"}', undefined],
      ['a negative epoch', '{"epoch":-1}', undefined],
      ['a fractional epoch', '{"epoch":1.5}', undefined],
      ['an array', '[6]', undefined],
      ['no epoch', '{"v":1}', undefined],
    ];
    for (const [what, text, want] of table)
      it(what, () => assert.equal(readableEpoch(Buffer.from(text)), want));
    it('no value / bad UTF-8', () => {
      assert.equal(readableEpoch(null), undefined);
      assert.equal(readableEpoch(Buffer.from([0x7b, 0xff, 0x7d])), undefined);
    });
  });

  it('hosts that are names are resolved through the given map', () => {
    const s = [snap('g1', meta('g1', [A, D]), route(1, D, [A]))];
    assert.deepEqual(hostsToResolve(s), ['db4.example']);
    const d = desired(s, [], new Map([['db4.example', '10.0.0.4']]));
    assert.deepEqual(d.groups[0]!.write, { node: D, addr: '10.0.0.4', port: 3306, check: null });
  });

  it('a znode listed but not read yet keeps the applied group; a deleted meta_group removes it', () => {
    const prev = applied('g1', 5, A, [B]);
    assert.deepEqual(desired([snap('g1', { kind: 'loading' }, { kind: 'loading' })], [prev]).groups, [prev]);
    assert.deepEqual(desired([], [prev]).groups, []);
    assert.deepEqual(desired([snap('g1', { kind: 'absent' }, route(6, A, []))], [prev]).groups, []);
  });

  it('a route that disappears keeps the applied servers (never drop routes on a missing record)', () => {
    const prev = applied('g1', 5, A, [B]);
    assert.deepEqual(desired([snap('g1', meta('g1', [A, B]), { kind: 'absent' })], [prev]).groups, [prev]);
  });

  it('a new group whose port is taken is not routed; an existing group keeps its ports', () => {
    const prev = applied('g1', 5, A, [B], [13306, 13307]);
    const d = desired(
      [
        snap('g1', meta('g1', [A, B]), route(5, A, [B])),
        snap('g2', meta('g2', [C], 13307, 13308), route(1, C, [])),
      ],
      [prev],
    );
    assert.deepEqual(
      d.groups.map((g) => g.name),
      ['g1'],
    );
    assert.deepEqual(
      d.problems.map((p) => [p.group, p.kind]),
      [['g2', 'port-conflict']],
    );
  });

  it('a group moved onto a taken port keeps its previous ports', () => {
    const p1 = applied('g1', 5, A, [], [13306, 13307]);
    const p2 = applied('g2', 1, C, [], [14306, 14307]);
    const d = desired(
      [
        snap('g1', meta('g1', [A]), route(5, A, [])),
        snap('g2', meta('g2', [C], 13306, 14307), route(1, C, [])),
      ],
      [p1, p2],
    );
    const g2 = d.groups.find((g) => g.name === 'g2')!;
    assert.deepEqual([g2.writePort, g2.readPort], [14306, 14307]);
    assert.equal(d.problems[0]!.kind, 'port-conflict');
  });

  it('writePort equal to readPort is a conflict', () => {
    const d = desired([snap('g1', meta('g1', [A], 13306, 13306), route(1, A, []))]);
    assert.deepEqual(d.groups, []);
    assert.equal(d.problems[0]!.kind, 'port-conflict');
  });

  it('more readers than slots: the first ones are routed and the rest reported', () => {
    const nodes = [1, 2, 3, 4, 5].map((i) => `10.0.1.${i}:3306`);
    const d = desired([snap('g1', meta('g1', nodes), route(1, null, nodes))]);
    assert.deepEqual(readNodes(d.groups[0]), nodes.slice(0, 4));
    assert.equal(d.problems[0]!.kind, 'too-many-reads');
  });
});

describe('router assignReadSlots: a node keeps its slot', () => {
  const table: Array<[string, (string | null)[], string[], (string | null)[]]> = [
    ['empty → fill from r1', [null, null, null], [A, B], [A, B, null]],
    ['stays put when another leaves', [A, B, C], [A, C], [A, null, C]],
    ['a newcomer takes a slot that was empty, not the one just freed', [A, B, null], [A, C], [A, null, C]],
    ['a freed slot is reused when nothing else is free', [A, B], [A, C], [A, C]],
    ['order of targets does not move nodes', [B, A, null], [A, B], [B, A, null]],
  ];
  for (const [name, prev, targets, want] of table) {
    it(name, () => {
      const r = assignReadSlots(
        prev.map((n) => (n === null ? null : slot(n))),
        targets.map((n) => slot(n)),
        prev.length,
      );
      assert.deepEqual(
        r.slots.map((s) => s?.node ?? null),
        want,
      );
      assert.deepEqual(r.overflow, []);
    });
  }

  it('an address change of a node keeps its slot and takes the new address', () => {
    const r = assignReadSlots([slot(D, '10.0.0.4')], [slot(D, '10.0.0.5')], 1);
    assert.deepEqual(r.slots, [slot(D, '10.0.0.5')]);
  });
});

describe("router checkTarget: where HAProxy's check asks a node's agent", () => {
  const table: Array<
    [string, AgentAddress | undefined, { addr: string; port: number } | null, string | null, boolean]
  > = [
    [
      'the agent publishes its bind address → that address and port',
      { httpHost: '10.0.9.1', httpPort: 8008 },
      null,
      '10.0.9.1:8008',
      false,
    ],
    [
      'the agent listens everywhere (0.0.0.0) → the node address',
      { httpHost: '0.0.0.0', httpPort: 8008 },
      null,
      '10.0.0.1:8008',
      false,
    ],
    ['an older agent without httpHost → the node address', { httpPort: 8008 }, null, '10.0.0.1:8008', false],
    [
      'loopback only while the node is not on loopback → the node address, and a problem',
      { httpHost: '127.0.0.1', httpPort: 8008 },
      null,
      '10.0.0.1:8008',
      true,
    ],
    [
      'the agent is gone → the address last known (its checks fail: node out)',
      undefined,
      { addr: '10.0.0.1', port: 8008 },
      '10.0.0.1:8008',
      false,
    ],
    ['no agent ever seen → no target (the check cannot pass)', undefined, null, null, false],
  ];
  for (const [name, agent, known, want, problem] of table)
    it(name, () => {
      const c = checkTarget(A, '10.0.0.1', agent, known);
      assert.equal(c.check === null ? null : `${c.check.addr}:${c.check.port}`, want);
      assert.equal(c.problem !== undefined, problem);
    });

  it('buildDesired attaches the check targets of agent/ records, and keeps them when an agent goes', () => {
    const agents = new Map<string, AgentAddress>([
      [A, { httpHost: '10.0.0.1', httpPort: 9001 }],
      [B, { httpHost: '10.0.0.2', httpPort: 9002 }],
    ]);
    const s = [snap('g1', meta('g1', [A, B, C]), route(3, A, [B, C]))];
    const d = buildDesired({ snapshot: s, previous: [], readSlots: 4, resolved: new Map(), agents });
    const g = d.groups[0]!;
    assert.deepEqual(g.write?.check, { addr: '10.0.0.1', port: 9001 });
    assert.deepEqual(g.read[0]?.check, { addr: '10.0.0.2', port: 9002 });
    assert.equal(g.read[1]?.check, null, 'C has no agent');
    const after = buildDesired({
      snapshot: s,
      previous: d.groups,
      readSlots: 4,
      resolved: new Map(),
      agents: new Map(),
    });
    assert.deepEqual(after.groups[0]!.write?.check, { addr: '10.0.0.1', port: 9001 });
  });
});
