import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isZkmhaError } from '../../core/errors';
import { Zk } from '../../core/zk/client';
import { acquireLock, readLockHolder } from '../../core/zk/lock';
import { ZkPaths } from '../../core/zk/paths';
import { spawnJsonChild, wallNow, type JsonChild } from '../../devenv/child';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, testLogger, type ZkCluster } from '../../devenv/zookeeper';

/** Sessions, ephemerals and the lock across real processes, against a standalone server. */
const SESSION_MS = 1500;
// ZooKeeper expires sessions in buckets of one tick (the deadline is rounded up to the next tick),
// so an ephemeral goes between T - (time since the owner's last ping) and T + tick after the
// owner dies. A short tick keeps that close to the session timeout; 200 ms covers the watch
// notification and this process's scheduling.
const TICK_MS = 250;
const MARGIN_MS = TICK_MS + 200;
const FIXTURE = path.join(__dirname, 'fixtures', 'zk-child.js');

describe('ZooKeeper across processes', () => {
  let zks: ZkCluster;
  let zk: Zk;
  const children: JsonChild[] = [];
  const paths = new ZkPaths('/mha');

  const child = (arg: Record<string, unknown>): JsonChild => {
    const c = spawnJsonChild(FIXTURE, { hosts: zks.connectString, sessionTimeoutMs: SESSION_MS, ...arg });
    children.push(c);
    return c;
  };

  before(async () => {
    zks = await startZooKeeper({ tickTime: TICK_MS, minSessionTimeout: 1000 });
    zk = await Zk.connect({ hosts: zks.connectString, sessionTimeoutMs: SESSION_MS, logger: testLogger() });
    await zk.mkdirp('/eph');
  });

  after(async () => {
    await Promise.all(children.map((c) => c.kill()));
    await zk?.close();
    await zks?.close();
  });

  it("an ephemeral node disappears when its owner's process is SIGKILLed, within the session timeout", async (t) => {
    const holder = child({ cmd: 'ephemeral', path: '/eph/agent' });
    const ready = await holder.next((e) => e.ev === 'ready', 10000, 'ready');
    const seen: { at: number; present: boolean }[] = [];
    const w = zk.watchData('/eph/agent', (v) => seen.push({ at: wallNow(), present: v !== null }));
    try {
      await waitFor(() => seen.at(-1)?.present === true, {
        timeoutMs: 2000,
        what: 'the ephemeral as seen by the watcher',
      });
      assert.equal((await zk.get('/eph/agent')).stat.ephemeralOwner, ready.session);
      const killedAt = wallNow();
      await holder.kill('SIGKILL');
      const gone = await waitFor(() => seen.find((s) => !s.present && s.at >= killedAt), {
        timeoutMs: SESSION_MS * 4,
        what: 'the watcher to see the ephemeral vanish',
      });
      const ms = gone.at - killedAt;
      t.diagnostic(`ephemeral gone ${ms.toFixed(0)} ms after SIGKILL (session ${SESSION_MS} ms)`);
      assert.ok(
        ms <= SESSION_MS + MARGIN_MS,
        `vanished after ${ms.toFixed(0)} ms, session timeout ${SESSION_MS} ms`,
      );
    } finally {
      w.cancel();
    }
  });

  it('two processes contending for one lock never hold it at the same time', async () => {
    const rounds = 8;
    // Both connect first, then start together when /go-g1 appears.
    const common = {
      cmd: 'lock',
      root: '/mha',
      group: 'g1',
      rounds,
      holdMs: 15,
      timeoutMs: 15000,
      goPath: '/go-g1',
    };
    const a = child({ ...common, owner: 'a' });
    const b = child({ ...common, owner: 'b' });
    await a.next((e) => e.ev === 'connected', 10000, 'a connected');
    await b.next((e) => e.ev === 'connected', 10000, 'b connected');
    await zk.create('/go-g1');
    await a.next((e) => e.ev === 'done', 20000, 'a done');
    await b.next((e) => e.ev === 'done', 20000, 'b done');
    const intervals = (c: JsonChild, who: string): { who: string; start: number; end: number }[] => {
      const acq = c.events.filter((e) => e.ev === 'acquired').map((e) => e.t as number);
      const rel = c.events.filter((e) => e.ev === 'released');
      assert.equal(acq.length, rounds, `${who} acquired every round`);
      assert.equal(rel.length, rounds, `${who} released every round`);
      assert.ok(
        rel.every((e) => e.stillHeld === true),
        `${who} never lost the lock while holding it`,
      );
      return acq.map((start, i) => ({ who, start, end: rel[i]!.t as number }));
    };
    const all = [...intervals(a, 'a'), ...intervals(b, 'b')].sort((x, y) => x.start - y.start);
    for (let i = 1; i < all.length; i++) {
      const prev = all[i - 1]!;
      const cur = all[i]!;
      assert.ok(
        prev.end < cur.start,
        `hold of ${cur.who} at ${cur.start} overlaps hold of ${prev.who} ending ${prev.end}`,
      );
    }
    // Both really contended: the holds interleave rather than one process doing all its rounds first.
    const switches = all.filter((x, i) => i > 0 && x.who !== all[i - 1]!.who).length;
    assert.ok(switches >= 2, `holds alternated ${switches} times`);
  });

  it('killing the lock holder with SIGKILL hands the lock to the waiter within the session timeout', async (t) => {
    const holder = child({ cmd: 'lock', root: '/mha', group: 'g2', owner: 'holder', rounds: 0 });
    await holder.next((e) => e.ev === 'acquired', 10000, 'holder acquired');
    const waiter = child({
      cmd: 'lock',
      root: '/mha',
      group: 'g2',
      owner: 'waiter',
      rounds: 0,
      timeoutMs: 20000,
    });
    // The waiter is in line (its node exists) and does not get the lock while the holder lives.
    await waitFor(async () => (await readLockHolder(zk, paths, 'g2'))?.waiters === 1, {
      timeoutMs: 5000,
      what: 'waiter in line',
    });
    const holderInfo = await readLockHolder(zk, paths, 'g2');
    assert.equal(holderInfo?.owner, 'holder');
    assert.equal(
      waiter.events.find((e) => e.ev === 'acquired'),
      undefined,
    );

    const killedAt = wallNow();
    await holder.kill('SIGKILL');
    const got = await waiter.next((e) => e.ev === 'acquired', SESSION_MS * 4, 'waiter acquired');
    const ms = (got.t as number) - killedAt;
    t.diagnostic(`lock handed over ${ms.toFixed(0)} ms after SIGKILL (session ${SESSION_MS} ms)`);
    assert.ok(
      ms <= SESSION_MS + MARGIN_MS,
      `handed over after ${ms.toFixed(0)} ms, session timeout ${SESSION_MS} ms`,
    );
    assert.equal((await readLockHolder(zk, paths, 'g2'))?.owner, 'waiter');
  });

  it('an acquire that times out says LOCK_TIMEOUT and leaves no node behind', async () => {
    const holder = await acquireLock(zk, paths, 'g3', { owner: 'me', timeoutMs: 2000 });
    assert.ok(holder.isHeld());
    const second = await Zk.connect({
      hosts: zks.connectString,
      sessionTimeoutMs: SESSION_MS,
      logger: testLogger(),
    });
    try {
      await assert.rejects(acquireLock(second, paths, 'g3', { owner: 'late', timeoutMs: 300 }), (e) =>
        isZkmhaError(e, 'LOCK_TIMEOUT'),
      );
      await waitFor(async () => (await zk.children(paths.lockDir('g3'))).length === 1, {
        timeoutMs: 2000,
        what: 'the timed-out node to go',
      });
      assert.equal((await readLockHolder(zk, paths, 'g3'))?.owner, 'me');
      await holder.release();
      assert.equal(holder.isHeld(), false);
      assert.equal(await readLockHolder(zk, paths, 'g3'), null);
      const next = await acquireLock(second, paths, 'g3', { owner: 'late', timeoutMs: 1000 });
      assert.ok(next.isHeld());
    } finally {
      await second.close();
    }
  });

  it('a holder learns it lost the lock when its server stops answering, before the session can expire', async (t) => {
    const c = await Zk.connect({
      hosts: zks.connectString,
      sessionTimeoutMs: SESSION_MS,
      logger: testLogger(),
    });
    try {
      const lock = await acquireLock(c, paths, 'g4', { owner: 'doomed', timeoutMs: 2000 });
      let lostCalled = false;
      lock.onLost(() => (lostCalled = true));
      const frozenAt = wallNow();
      zks.members[0]!.pause();
      try {
        await lock.lost;
      } finally {
        zks.members[0]!.resume();
      }
      const ms = wallNow() - frozenAt;
      t.diagnostic(`lock given up ${ms.toFixed(0)} ms after the server froze`);
      assert.ok(lostCalled);
      assert.equal(lock.isHeld(), false);
      // Lost by 2/3 of the session timeout of silence: before the ensemble could hand it to anyone.
      assert.ok(ms < SESSION_MS, `lost after ${ms.toFixed(0)} ms`);
      await waitFor(async () => (await readLockHolder(zk, paths, 'g4')) === null, {
        timeoutMs: SESSION_MS * 4,
        what: 'the lost lock node to go',
      });
    } finally {
      await c.close();
    }
  });
});
