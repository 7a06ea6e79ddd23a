import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Ack } from '../../devenv/cluster';
import {
  lostAcks,
  median,
  percentile,
  readsFromOldMaster,
  readsOfLostRows,
  writeOutage,
  type ReadSample,
} from '../../devenv/traffic';

/** The analyses the end-to-end test and bench:e2e judge a master change by. */
const OLD = '127.0.0.1:1001';
const NEW = '127.0.0.1:1002';
const REP = '127.0.0.1:1003';
const ack = (id: number, node: string, hr: number): Ack => ({ id, node, at: hr, hr });
const read = (startHr: number, node: string, readOnly: boolean, maxId: number): ReadSample => ({
  startHr,
  endHr: startHr + 1,
  node,
  readOnly,
  maxId,
});

describe('writeOutage', () => {
  const cases: Array<{
    name: string;
    acks: Ack[];
    errorsAt: number[];
    want: { ms: number; errors: number } | RegExp;
  }> = [
    {
      name: 'last ack of the old master to the first of the new one, counting failures in between',
      acks: [ack(1, OLD, 10), ack(2, OLD, 20), ack(3, NEW, 320), ack(4, NEW, 330)],
      errorsAt: [15, 25, 100, 319, 340],
      want: { ms: 300, errors: 3 },
    },
    {
      name: 'the old master acknowledging after the new one did is split brain, not an outage',
      acks: [ack(1, OLD, 10), ack(2, NEW, 20), ack(3, OLD, 30)],
      errorsAt: [],
      want: /acknowledged by 127\.0\.0\.1:1001 after/,
    },
    {
      name: 'no write on the new master',
      acks: [ack(1, OLD, 10)],
      errorsAt: [],
      want: /no write acknowledged by the new master/,
    },
    {
      name: 'no write on the old master first',
      acks: [ack(1, NEW, 10)],
      errorsAt: [],
      want: /no write acknowledged by the old master/,
    },
    {
      name: 'a write on a third node between them does not count as the old master',
      acks: [ack(1, OLD, 10), ack(2, REP, 20), ack(3, NEW, 30)],
      errorsAt: [],
      want: { ms: 20, errors: 0 },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = writeOutage(
        c.acks,
        c.errorsAt.map((hr) => ({ hr, message: 'x' })),
        OLD,
        NEW,
      );
      if (c.want instanceof RegExp) {
        assert.equal(typeof r, 'string');
        assert.match(r as string, c.want);
      } else {
        assert.ok(typeof r !== 'string', String(r));
        assert.equal(r.ms, c.want.ms);
        assert.equal(r.errors, c.want.errors);
      }
    });
  }
});

describe('reads the reader must not get', () => {
  const reads = [
    read(5, OLD, true, 3), // before T: the old master is allowed (it was in the pool, say)
    read(50, OLD, false, 9), // after T, old master still writable: a read from the old master as master
    read(60, OLD, true, 12), // after T, old master read-only (returned as a replica)
    read(70, REP, true, 12),
  ];
  it('after a kill, any read from the old master after the new master took writes', () => {
    assert.deepEqual(
      readsFromOldMaster(reads, OLD, 40, false).map((r) => r.startHr),
      [50, 60],
    );
  });
  it('after a switchover, only answers from the old master while it is not read-only', () => {
    assert.deepEqual(
      readsFromOldMaster(reads, OLD, 40, true).map((r) => r.startHr),
      [50],
    );
  });
  it('reads whose newest row is not on the master (an empty table counts as nothing seen)', () => {
    const have = new Set([1, 2, 3, 12]);
    assert.deepEqual(
      readsOfLostRows([...reads, read(80, REP, true, 0)], have).map((r) => r.maxId),
      [9],
    );
  });
  it('lost acknowledged rows', () => {
    assert.deepEqual(
      lostAcks([ack(1, OLD, 1), ack(2, OLD, 2), ack(3, NEW, 3)], new Set([1, 3])).map((a) => a.id),
      [2],
    );
  });
});

describe('median and percentile', () => {
  const cases: Array<[number[], number, number, number]> = [
    // values, median, p95, p50
    [[5], 5, 5, 5],
    [[4, 1, 3, 2], 2.5, 4, 2],
    [[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 55, 100, 50],
  ];
  for (const [xs, med, p95, p50] of cases) {
    it(`[${xs.join(',')}]`, () => {
      assert.equal(median(xs), med);
      assert.equal(percentile(xs, 95), p95);
      assert.equal(percentile(xs, 50), p50);
    });
  }
  it('empty input is NaN, not 0', () => {
    assert.ok(Number.isNaN(median([])));
    assert.ok(Number.isNaN(percentile([], 95)));
  });
});
