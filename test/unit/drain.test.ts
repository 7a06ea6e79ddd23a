import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  describeDrain,
  drainVerdict,
  serialized,
  type DrainClock,
  type DrainVerdict,
} from '../../core/ops/drain';

describe('drainVerdict: a deadline that moves while apply progresses', () => {
  const limits = { stallMs: 5000, maxMs: 60_000 };
  const at = (o: Partial<DrainClock>): DrainClock => ({
    startedAt: 0,
    now: 0,
    lastProgressAt: 0,
    remaining: 100,
    ...o,
  });
  const table: Array<[string, DrainClock, DrainVerdict['kind'], number?]> = [
    ['nothing left: done', at({ remaining: 0, now: 99_000 }), 'done'],
    ['just started: wait one slice', at({}), 'wait', 500],
    [
      '12 s in, progress 1 s ago: still waiting (a fixed 5 s bound would have failed)',
      at({ now: 12_000, lastProgressAt: 11_000 }),
      'wait',
      500,
    ],
    ['no progress for the whole stall budget: stalled', at({ now: 7000, lastProgressAt: 2000 }), 'stalled'],
    ['no progress at all from the start for 5 s: stalled', at({ now: 5000 }), 'stalled'],
    ['a slice never overruns the stall budget', at({ now: 4800 }), 'wait', 200],
    ['a slice never overruns the overall bound', at({ now: 59_900, lastProgressAt: 59_800 }), 'wait', 100],
    ['progressing but past drainMaxMs: too long', at({ now: 60_000, lastProgressAt: 59_900 }), 'too-long'],
  ];
  for (const [name, clock, kind, forMs] of table)
    it(name, () => {
      const v = drainVerdict(clock, limits);
      assert.equal(v.kind, kind);
      if (forMs !== undefined) assert.equal(v.kind === 'wait' ? v.forMs : -1, forMs);
    });
  it('says how many transactions were left and for how long nothing moved', () => {
    const v = drainVerdict(at({ now: 9000, lastProgressAt: 3000, remaining: 42 }), limits);
    assert.equal(v.kind === 'stalled' ? v.why : '', 'applied nothing for 6000 ms with 42 transactions left');
  });
  it('describes a progress record for mha status', () => {
    const line = describeDrain({
      node: '10.0.0.2:3306',
      target: '0-1-5000',
      applied: '0-1-4000',
      remaining: 1000,
      ratePerSec: 500,
      etaSeconds: 2,
      elapsedMs: 1500,
      at: 0,
    });
    assert.equal(line, 'draining 10.0.0.2:3306: 1000 transactions left, 500/s (~2s), 1.5s so far');
  });
});

describe('serialized', () => {
  it('runs calls one after another, and a failure does not block the next', async () => {
    const log: string[] = [];
    let n = 0;
    const f = serialized(async (x: string) => {
      const i = n++;
      log.push(`start ${x}`);
      await new Promise((r) => setImmediate(r));
      log.push(`end ${x}`);
      if (i === 0) throw new Error('first fails');
    });
    const [a, b] = await Promise.allSettled([f('a'), f('b')]);
    assert.equal(a.status, 'rejected');
    assert.equal(b.status, 'fulfilled');
    assert.deepEqual(log, ['start a', 'end a', 'start b', 'end b']);
  });
});
