import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  appliedCount,
  backlogBucket,
  backlogSeconds,
  backlogTrx,
  nextApplyRate,
  type ApplyRateSample,
} from '../../core/backlog';
import { measureApplyRate, onlineChanged, onlineRecordFor, type MysqlStatus } from '../../client/health';

describe('apply backlog: received − applied', () => {
  const table: Array<[string, string, string, number | null]> = [
    ['nothing waiting', '0-1-100', '0-1-100', 0],
    ['received ahead of applied', '0-1-5000', '0-1-3000', 2000],
    ['applied ahead of received (after a restart): no backlog', '0-1-10', '0-1-12', 0],
    ['summed over domains', '0-1-10,1-2-50', '0-1-5,1-2-40', 15],
    ['a domain not applied at all counts from 0', '0-1-10,1-2-5', '0-1-10', 5],
    ['empty positions', '', '', 0],
    ['unreadable position → unknown', '0-1-x', '0-1-1', null],
  ];
  for (const [name, io, slave, want] of table) it(name, () => assert.equal(backlogTrx(io, slave), want));
});

describe('apply rate and the seconds estimate', () => {
  it('needs two measurements, then smooths the intervals', () => {
    const a = nextApplyRate(null, 1000, 0);
    assert.equal(a.rate, null);
    const b = nextApplyRate(a, 1100, 1000); // 100/s
    assert.equal(b.rate, 100);
    const c = nextApplyRate(b, 1400, 2000); // 300/s, smoothed with 100
    assert.equal(c.rate, 200);
  });
  it('starts over when applied goes backwards or time does not advance', () => {
    const a: ApplyRateSample = { applied: 1000, at: 1000, rate: 50 };
    assert.equal(nextApplyRate(a, 10, 2000).rate, null);
    assert.equal(nextApplyRate(a, 1100, 1000).rate, null);
  });
  const table: Array<[string, number, number | null, number | null]> = [
    ['no backlog: 0 s whatever the rate', 0, null, 0],
    ['2,000 at 400/s: 5 s', 2000, 400, 5],
    ['rounded up to 0.1 s', 10, 300, 0.1],
    ['no rate yet: unknown', 50, null, null],
    ['nothing applied lately while transactions wait (stalled): unknown', 50, 0, null],
  ];
  for (const [name, trx, rate, want] of table) it(name, () => assert.equal(backlogSeconds(trx, rate), want));
  it('appliedCount sums the domains, null when unreadable', () => {
    assert.equal(appliedCount('0-1-10,1-1-5'), 15);
    assert.equal(appliedCount('bad'), null);
  });
});

describe('apply backlog in the heartbeat record', () => {
  const status = (io: string, slave: string): MysqlStatus => ({
    role: 'replica',
    readOnly: true,
    gtidCurrent: slave,
    gtidSlave: slave,
    replica: { masterNode: '10.0.0.1:3306', ioRunning: true, sqlRunning: true, lagSeconds: 0, gtidIo: io },
  });
  it('carries the rate from check to check and publishes trx and seconds', () => {
    const s1 = measureApplyRate(null, status('0-1-1500', '0-1-1000'), 0);
    const s2 = measureApplyRate(s1, status('0-1-2000', '0-1-1200'), 1000); // 200/s, 800 waiting
    const rec = onlineRecordFor(s2, 1000);
    assert.equal(rec.backlogTrx, 800);
    assert.equal(rec.backlogSeconds, 4);
    assert.equal(onlineRecordFor(s1, 0).backlogSeconds, null, 'no rate after one check');
  });
  it('a master publishes no backlog', () => {
    const m: MysqlStatus = {
      role: 'master',
      readOnly: false,
      gtidCurrent: '0-1-5',
      gtidSlave: '',
      replica: null,
    };
    assert.equal(onlineRecordFor(measureApplyRate(null, m, 0), 0).backlogTrx, undefined);
  });
  it('rewrites the record only when the backlog changes bucket', () => {
    const rec = (io: string, slave: string) => onlineRecordFor(status(io, slave), 0);
    assert.equal(onlineChanged(rec('0-1-100', '0-1-100'), rec('0-1-150', '0-1-100'), 30), false);
    assert.equal(onlineChanged(rec('0-1-100', '0-1-100'), rec('0-1-1100', '0-1-100'), 30), true);
    assert.deepEqual([0, 99, 100, 999, 1000, 10_000].map(backlogBucket), [0, 0, 1, 1, 2, 3]);
  });
});
