import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { planGaleraAdd } from '../../cli/galera-add';
import type { GaleraState } from '../../core/mysql/galera';

const UUID = '6d2a0a9e-0c1b-11ef-8a4e-0242ac120002';
const OTHER = '7e3b1baf-1d2c-11ef-9b5f-0242ac120003';
const N = ['10.0.0.1:3306', '10.0.0.2:3306', '10.0.0.3:3306'];

function synced(over: Partial<GaleraState> = {}): GaleraState {
  return {
    clusterStatus: 'Primary',
    localState: 4,
    localStateComment: 'Synced',
    ready: true,
    connected: true,
    clusterSize: 3,
    clusterStateUuid: UUID,
    lastCommitted: 10,
    ...over,
  } as GaleraState;
}

describe('planGaleraAdd: registers only a whole, healthy Primary Component', () => {
  const cases: Array<{
    name: string;
    states: Array<GaleraState | undefined>;
    master?: string;
    want: RegExp | { writer: string; readers: string[] };
  }> = [
    {
      name: 'three Synced nodes: the first by name writes',
      states: [synced(), synced(), synced()],
      want: { writer: N[0]!, readers: [N[1]!, N[2]!] },
    },
    {
      name: '--master is honoured',
      states: [synced(), synced(), synced()],
      master: N[2],
      want: { writer: N[2]!, readers: [N[0]!, N[1]!] },
    },
    {
      name: 'wsrep off on one node',
      states: [synced(), undefined, synced()],
      want: /10\.0\.0\.2:3306 is not a Galera node/,
    },
    {
      name: 'a non-Primary node',
      states: [synced(), synced({ clusterStatus: 'non-Primary' }), synced()],
      want: /is non-Primary, not in a Primary Component/,
    },
    {
      name: 'a donor',
      states: [synced(), synced(), synced({ localState: 2, localStateComment: 'Donor/Desynced' })],
      want: /is Donor\/Desynced, not Synced and ready/,
    },
    {
      name: 'not ready',
      states: [synced({ ready: false }), synced(), synced()],
      want: /not Synced and ready/,
    },
    {
      name: 'two clusters',
      states: [synced(), synced(), synced({ clusterStateUuid: OTHER })],
      want: /different clusters/,
    },
    {
      name: 'a member left out of --nodes',
      states: [synced({ clusterSize: 4 }), synced({ clusterSize: 4 }), synced({ clusterSize: 4 })],
      want: /component of 4 members but --nodes names 3/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const states = new Map(N.map((n, i) => [n, c.states[i]]));
      const plan = planGaleraAdd(
        { nodes: N, ...(c.master !== undefined ? { master: c.master } : {}) },
        states,
      );
      if (c.want instanceof RegExp) {
        assert.equal(plan.kind, 'refuse');
        assert.match(plan.kind === 'refuse' ? plan.reason : '', c.want);
      } else {
        assert.equal(plan.kind, 'ok');
        if (plan.kind === 'ok') assert.deepEqual({ writer: plan.writer, readers: [...plan.readers] }, c.want);
      }
    });
  }
});
