import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { decideGaleraRoute, type GaleraRouteInput } from '../../core/galera-route';
import type { GaleraOnline, MetaHost, OnlineRecord } from '../../core/records';

const U1 = '2810218a-f235-11f1-a02c-26887f911c77';
const U2 = '9f0c1d2e-f235-11f1-a02c-26887f911c77';
const A = '10.0.0.1:3306';
const B = '10.0.0.2:3306';
const C = '10.0.0.3:3306';

const SYNCED: GaleraOnline = {
  clusterStatus: 'Primary',
  localState: 4,
  localStateComment: 'Synced',
  ready: true,
  clusterSize: 3,
  stateUuid: U1,
  lastCommitted: 10,
};
const DONOR: Partial<GaleraOnline> = { localState: 2, localStateComment: 'Donor/Desynced' };
const JOINER: Partial<GaleraOnline> = { localState: 1, localStateComment: 'Joining', ready: false };
const NON_PRIMARY: Partial<GaleraOnline> = {
  clusterStatus: 'non-Primary',
  localState: 0,
  localStateComment: 'Initialized',
  ready: false,
  clusterSize: 1,
};

/** An online/ record; `null` galera: an agent that publishes no wsrep state. */
function rec(g: Partial<GaleraOnline> | null = {}): OnlineRecord {
  return {
    v: 1,
    mysqldUp: true,
    role: 'master',
    readOnly: false,
    gtidCurrent: '',
    ...(g === null ? {} : { galera: { ...SYNCED, ...g } }),
    at: 1,
  };
}

interface Case {
  readonly name: string;
  readonly online: Readonly<Record<string, OnlineRecord>>;
  readonly current: string | null;
  readonly hosts?: Readonly<Record<string, Pick<MetaHost, 'priority' | 'dc'>>>;
  readonly preferredDc?: string;
  readonly drained?: readonly string[];
  readonly want: {
    readonly write: string | null;
    readonly read: readonly string[];
    readonly reason: string;
    readonly moved: boolean;
    readonly excluded?: Readonly<Record<string, string>>;
    readonly conflict?: RegExp;
  };
}

const all3 = { [A]: rec(), [B]: rec(), [C]: rec() };
const cases: readonly Case[] = [
  {
    name: 'first route: the first by name; the others read',
    online: all3,
    current: null,
    want: { write: A, read: [B, C], reason: 'chosen', moved: true },
  },
  {
    name: 'stable: the current writer is kept while Synced and Primary',
    online: all3,
    current: C,
    want: { write: C, read: [A, B], reason: 'kept', moved: false },
  },
  {
    name: 'stable even against the preferred DC',
    online: all3,
    current: C,
    hosts: { [A]: { priority: 1, dc: 'east' }, [C]: { priority: 1, dc: 'west' } },
    preferredDc: 'east',
    want: { write: C, read: [A, B], reason: 'kept', moved: false },
  },
  {
    name: 'the writer gone (no heartbeat): moves, preferring the preferred DC over name and priority',
    online: { [A]: rec(), [B]: rec({ clusterSize: 2 }) },
    current: C,
    hosts: {
      [A]: { priority: 1, dc: 'west' },
      [B]: { priority: 2, dc: 'east' },
      [C]: { priority: 1, dc: 'east' },
    },
    preferredDc: 'east',
    want: { write: B, read: [A], reason: 'chosen', moved: true, excluded: { [C]: 'no-heartbeat' } },
  },
  {
    name: 'priority 1 before 2, never 0; a priority-0 node still reads',
    online: all3,
    current: null,
    hosts: { [A]: { priority: 0 }, [B]: { priority: 2 }, [C]: { priority: 1 } },
    want: { write: C, read: [A, B], reason: 'chosen', moved: true },
  },
  {
    name: 'the writer becomes a donor: it leaves both pools at once',
    online: { [A]: rec(DONOR), [B]: rec(), [C]: rec() },
    current: A,
    want: { write: B, read: [C], reason: 'chosen', moved: true, excluded: { [A]: 'not-synced' } },
  },
  {
    name: 'a joiner and a donor during SST are never routed',
    online: { [A]: rec(), [B]: rec(DONOR), [C]: rec(JOINER) },
    current: A,
    want: {
      write: A,
      read: [A],
      reason: 'kept',
      moved: false,
      excluded: { [B]: 'not-synced', [C]: 'not-synced' },
    },
  },
  {
    name: 'Synced but not ready is not routed',
    online: { [A]: rec({ ready: false }), [B]: rec(), [C]: rec() },
    current: A,
    want: { write: B, read: [C], reason: 'chosen', moved: true, excluded: { [A]: 'not-ready' } },
  },
  {
    name: 'the only survivor non-Primary: no writer, no reads',
    online: { [A]: rec(NON_PRIMARY) },
    current: A,
    want: {
      write: null,
      read: [],
      reason: 'none-routable',
      moved: true,
      excluded: { [A]: 'not-primary', [B]: 'no-heartbeat', [C]: 'no-heartbeat' },
    },
  },
  {
    name: 'an agent without wsrep state (not a Galera agent) is not routed',
    online: { [A]: rec(null), [B]: rec(), [C]: rec() },
    current: null,
    want: { write: B, read: [C], reason: 'chosen', moved: true, excluded: { [A]: 'no-wsrep-state' } },
  },
  {
    name: 'a drained writer moves away and is out of reads',
    online: all3,
    current: A,
    drained: [A],
    want: { write: B, read: [C], reason: 'chosen', moved: true, excluded: { [A]: 'drained' } },
  },
  {
    name: 'only priority-0 nodes routable: no writer, they read',
    online: { [A]: rec(), [B]: rec(NON_PRIMARY) },
    current: B,
    hosts: { [A]: { priority: 0 } },
    want: { write: null, read: [A], reason: 'none-routable', moved: true },
  },
  {
    name: 'split brain (a Primary of 1 beside a Primary of 2): the routable writer is kept, reads only in its view',
    online: { [A]: rec({ clusterSize: 1 }), [B]: rec({ clusterSize: 2 }), [C]: rec({ clusterSize: 2 }) },
    current: B,
    want: {
      write: B,
      read: [C],
      reason: 'kept',
      moved: false,
      conflict: /10\.0\.0\.1:3306 is Primary in a component of 1/,
    },
  },
  {
    name: 'split brain and the writer gone: no writes, no side picked',
    online: { [A]: rec({ clusterSize: 1 }), [B]: rec({ clusterSize: 2 }), [C]: rec({ clusterSize: 2 }) },
    current: null,
    want: { write: null, read: [], reason: 'conflict', moved: false, conflict: /component of 1/ },
  },
  {
    name: 'two state UUIDs among Primary nodes: a conflict',
    online: { [A]: rec({ stateUuid: U2 }), [B]: rec(), [C]: rec() },
    current: null,
    want: { write: null, read: [], reason: 'conflict', moved: false, conflict: /different state UUIDs/ },
  },
  {
    name: 'a stale larger size after a node left is no conflict',
    online: { [A]: rec({ clusterSize: 3 }), [B]: rec({ clusterSize: 2 }) },
    current: A,
    want: { write: A, read: [B], reason: 'kept', moved: false, excluded: { [C]: 'no-heartbeat' } },
  },
  {
    name: 'a record of a non-member is ignored',
    online: { ...all3, '10.0.0.9:3306': rec() },
    current: null,
    want: { write: A, read: [B, C], reason: 'chosen', moved: true },
  },
];

describe('decideGaleraRoute', () => {
  for (const c of cases)
    it(c.name, () => {
      const input: GaleraRouteInput = {
        members: [C, A, B],
        online: new Map(Object.entries(c.online)),
        hosts: new Map(Object.entries(c.hosts ?? {})),
        currentWriter: c.current,
        ...(c.preferredDc !== undefined ? { preferredDc: c.preferredDc } : {}),
        ...(c.drained !== undefined ? { drained: new Set(c.drained) } : {}),
      };
      const r = decideGaleraRoute(input);
      assert.deepEqual(
        { write: r.write, read: r.read, reason: r.reason, moved: r.moved },
        { write: c.want.write, read: c.want.read, reason: c.want.reason, moved: c.want.moved },
      );
      if (c.want.excluded !== undefined) assert.deepEqual(Object.fromEntries(r.excluded), c.want.excluded);
      if (c.want.conflict !== undefined) assert.match(r.conflict ?? '', c.want.conflict);
      else assert.equal(r.conflict, undefined);
      // Invariants: at most one writer; nothing unroutable in either pool; the writer is routable.
      for (const n of [...r.read, ...(r.write !== null ? [r.write] : [])]) assert.ok(!r.excluded.has(n), n);
    });
});
