import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  decodeRecord,
  haproxySchema,
  historySchema,
  masterSchema,
  type GaleraOnline,
} from '../../core/records';
import { ZkPaths } from '../../core/zk/paths';
import { galeraRouteOf, galeraRouteOps } from '../../core/ops/galera';
import { A, B, M, view, type MemberSpec } from './server-fixtures';

const paths = new ZkPaths('/mha');
const G: GaleraOnline = {
  clusterStatus: 'Primary',
  localState: 4,
  localStateComment: 'Synced',
  ready: true,
  clusterSize: 3,
  stateUuid: '2810218a-f235-11f1-a02c-26887f911c77',
  lastCommitted: 1,
};
const synced = (node: string, g: Partial<GaleraOnline> = {}): MemberSpec => ({
  node,
  online: { galera: { ...G, ...g } },
});

describe('server/galera: the multi for a route change', () => {
  it('nothing changes: no ops', () => {
    const v = view({ members: [synced(M), synced(A), synced(B)], write: M, read: [A, B], epoch: 4 });
    assert.equal(galeraRouteOps(v, galeraRouteOf(v)!, paths, 7), null);
  });

  it('a writer move: master/ and haproxy/ with the epoch + 1 (CAS on both) and a history event', () => {
    const v = view({
      members: [{ node: M, online: null }, synced(A, { clusterSize: 2 }), synced(B, { clusterSize: 2 })],
      write: M,
      read: [A, B],
      epoch: 4,
      routeEpoch: 4,
    });
    const plan = galeraRouteOps(v, galeraRouteOf(v)!, paths, 7)!;
    assert.equal(plan.moved, true);
    assert.equal(plan.epoch, 5);
    const [master, route, history] = plan.ops;
    assert.ok(master?.op === 'set' && master.version === 3);
    assert.deepEqual(decodeRecord(masterSchema, master.data, 'm'), {
      v: 1,
      node: A,
      epoch: 5,
      since: 7,
      reason: 'galera writer: chosen',
    });
    assert.ok(route?.op === 'set' && route.version === 5);
    assert.deepEqual(decodeRecord(haproxySchema, route.data, 'r'), { v: 1, epoch: 5, write: A, read: [B] });
    assert.ok(history?.op === 'create' && history.mode === 'persistent_sequential');
    const h = decodeRecord(historySchema, history.data ?? null, 'h');
    assert.deepEqual([h.kind, h.from, h.to, h.epoch], ['galera-writer', M, A, 5]);
    assert.deepEqual(h.detail.excluded, { [M]: 'no-heartbeat' });
  });

  it('a read-pool change keeps the epoch and checks master/', () => {
    const v = view({
      members: [synced(M), synced(A, { localState: 2, localStateComment: 'Donor/Desynced' }), synced(B)],
      write: M,
      read: [A, B],
      epoch: 4,
    });
    const plan = galeraRouteOps(v, galeraRouteOf(v)!, paths, 7)!;
    assert.equal(plan.moved, false);
    assert.deepEqual(
      plan.ops.map((o) => o.op),
      ['check', 'set'],
    );
    const set = plan.ops[1]!;
    assert.ok(set.op === 'set');
    assert.deepEqual(decodeRecord(haproxySchema, set.data, 'r'), { v: 1, epoch: 4, write: M, read: [B] });
  });

  it('no routable node: write null with the epoch + 1, master/ left as it was', () => {
    const v = view({
      members: [synced(M, { clusterStatus: 'non-Primary', clusterSize: 1 }), { node: A, online: null }],
      write: M,
      read: [A],
      epoch: 4,
    });
    const plan = galeraRouteOps(v, galeraRouteOf(v)!, paths, 7)!;
    assert.deepEqual(
      plan.ops.map((o) => o.op),
      ['check', 'set', 'create'],
    );
    const set = plan.ops[1]!;
    assert.ok(set.op === 'set');
    assert.deepEqual(decodeRecord(haproxySchema, set.data, 'r'), { v: 1, epoch: 5, write: null, read: [] });
  });

  it('invalid records: no decision', () => {
    const v = view({ members: [synced(M)] });
    assert.equal(galeraRouteOf({ ...v, invalid: { ...v.invalid, route: true } }), null);
  });
});
