import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decideReadOnlyMaster,
  type OtherNode,
  type ReadOnlyAction,
  type ReadOnlyProbe,
} from '../../server/readonly';
import { A, B, M, view, type ViewSpec } from './server-fixtures';

/**
 * A master whose heartbeat says read-only with no operation open (e.g. its agent self-fenced and
 * ZooKeeper came back in the same session): un-fenced only when everything says it is still the
 * one master, alone writable; alerted on otherwise.
 */
const roMaster = { node: M, online: { readOnly: true, role: 'none' as const } };
const group: ViewSpec = { members: [roMaster, { node: A }, { node: B }], epoch: 3 };
const fenced: ReadOnlyProbe = { kind: 'answered', readOnly: true, replicatingFrom: null };
const ro: OtherNode = { reachable: true, readOnly: true };
const othersRo = new Map<string, OtherNode>([
  [A, ro],
  [B, ro],
]);

interface Case {
  readonly name: string;
  readonly spec?: ViewSpec;
  readonly epoch?: number;
  readonly probe?: ReadOnlyProbe;
  readonly others?: ReadonlyMap<string, OtherNode>;
  readonly expect: ReadOnlyAction['kind'];
  readonly why?: RegExp;
}

const cases: Case[] = [
  { name: 'still the master, route names it, alone writable-capable: un-fence', expect: 'unfence' },
  {
    name: 'a replica that does not answer does not hold it back (it takes no writes; the route names the master)',
    others: new Map<string, OtherNode>([
      [A, ro],
      [B, { reachable: false }],
    ]),
    expect: 'unfence',
  },
  {
    name: 'master/ moved to another epoch meanwhile: nothing',
    epoch: 2,
    expect: 'none',
    why: /changed/,
  },
  {
    name: 'master/ names another node now: nothing',
    spec: { ...group, master: A },
    expect: 'none',
    why: /changed/,
  },
  {
    name: 'an operation opened meanwhile: nothing',
    spec: { ...group, task: { kind: 'switchover' } },
    expect: 'none',
    why: /operation/,
  },
  {
    name: 'the master does not answer the direct probe: nothing (failure detection handles it)',
    probe: { kind: 'failed', error: 'connect ETIMEDOUT' },
    expect: 'none',
    why: /did not answer/,
  },
  {
    name: 'the master is writable already (someone fixed it): nothing',
    probe: { kind: 'answered', readOnly: false, replicatingFrom: null },
    expect: 'none',
    why: /writable/,
  },
  {
    name: 'white-listed: alert only',
    spec: { ...group, white: true },
    expect: 'alert-only',
    why: /maintenance/,
  },
  {
    name: 'the route writes elsewhere: alert only',
    spec: { ...group, write: A },
    expect: 'alert-only',
    why: /does not route writes/,
  },
  {
    name: 'the route is cut (write: null): alert only',
    spec: { ...group, write: null },
    expect: 'alert-only',
    why: /does not route writes/,
  },
  {
    name: 'the route is at another epoch: alert only',
    spec: { ...group, routeEpoch: 4 },
    expect: 'alert-only',
    why: /does not route writes/,
  },
  {
    name: 'the master replicates from someone: alert only',
    probe: { kind: 'answered', readOnly: true, replicatingFrom: A },
    expect: 'alert-only',
    why: new RegExp(`replicates from ${A}`),
  },
  {
    name: 'another member is writable: alert only (never two writable nodes)',
    others: new Map<string, OtherNode>([
      [A, { reachable: true, readOnly: false }],
      [B, ro],
    ]),
    expect: 'alert-only',
    why: new RegExp(`${A} is writable too`),
  },
];

describe('decideReadOnlyMaster', () => {
  for (const c of cases) {
    it(c.name, () => {
      const d = decideReadOnlyMaster({
        view: view(c.spec ?? group),
        master: M,
        epoch: c.epoch ?? 3,
        probe: c.probe ?? fenced,
        others: c.others ?? othersRo,
      });
      assert.equal(d.kind, c.expect, JSON.stringify(d));
      if (c.why !== undefined) assert.match(d.kind === 'unfence' ? '' : d.why, c.why);
    });
  }
});
