import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildDesired, hostsToResolve, type GroupSnapshot, type Loaded } from '../../router/desired';
import { assignReadSlots, emptyGroup, type GroupState, type Slot } from '../../router/model';
import type { HaproxyRecord, MetaGroup } from '../../core/records';

const A = '10.0.0.1:3306';
const B = '10.0.0.2:3306';
const C = '10.0.0.3:3306';
const D = 'db4.example:3306';
const slot = (node: string, addr?: string): Slot => ({
  node,
  addr: addr ?? node.split(':')[0]!,
  port: Number(node.split(':')[1]),
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
      drainTimeoutMs: 5000,
      semiSync: false,
      autoRejoin: false,
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
    assert.deepEqual(d.groups, [emptyGroup('g1', 13306, 13307, 4)]);
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

  const keeps: Array<[string, GroupSnapshot, string]> = [
    [
      'an invalid route',
      snap('g1', meta('g1', [A, B]), { kind: 'invalid', error: 'epoch: Expected number' }),
      'bad-record',
    ],
    [
      'a route naming a node outside meta_group.members',
      snap('g1', meta('g1', [A, B]), route(6, C, [B])),
      'unknown-node',
    ],
    ['a reader outside members', snap('g1', meta('g1', [A, B]), route(6, A, [C])), 'unknown-node'],
    [
      'an invalid meta_group',
      snap('g1', { kind: 'invalid', error: 'writePort: must be a port' }, route(6, B, [])),
      'bad-record',
    ],
    ['an unresolvable host', snap('g1', meta('g1', [A, D]), route(6, D, [])), 'unresolved'],
  ];
  for (const [what, s, kind] of keeps) {
    it(`${what} leaves the applied group as it was and is reported (${kind})`, () => {
      const prev = applied('g1', 5, A, [B]);
      const d = desired([s], [prev]);
      assert.deepEqual(d.groups, [prev]);
      assert.deepEqual(
        d.problems.map((p) => [p.group, p.kind]),
        [['g1', kind]],
      );
    });
  }

  it('hosts that are names are resolved through the given map', () => {
    const s = [snap('g1', meta('g1', [A, D]), route(1, D, [A]))];
    assert.deepEqual(hostsToResolve(s), ['db4.example']);
    const d = desired(s, [], new Map([['db4.example', '10.0.0.4']]));
    assert.deepEqual(d.groups[0]!.write, { node: D, addr: '10.0.0.4', port: 3306 });
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
