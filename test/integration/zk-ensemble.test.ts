import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Zk } from '../../core/zk/client';
import { wallNow } from '../../devenv/child';
import { waitFor } from '../../devenv/wait';
import { startEnsemble, testLogger, type ZkCluster, type ZkMember } from '../../devenv/zookeeper';

/** The wrapper against a real 3-member ensemble: hung servers and stopped members. */
const SESSION_MS = 1500;
// The liveness check runs every sessionTimeout/15 (100 ms here); 100 ms more for scheduling.
const DETECT_MARGIN_MS = 200;

describe('Zk client against a 3-member ensemble', () => {
  let ens: ZkCluster;
  const open: Zk[] = [];

  const connect = async (hosts = ens.connectString): Promise<Zk> => {
    const c = await Zk.connect({ hosts, sessionTimeoutMs: SESSION_MS, logger: testLogger() });
    open.push(c);
    return c;
  };

  const memberOf = (c: Zk): ZkMember => {
    const port = Number(c.server?.split(':').at(-1));
    const m = ens.memberByPort(port);
    assert.ok(m !== undefined, `client talks to ${c.server}`);
    return m;
  };

  before(async () => {
    ens = await startEnsemble(3);
  });

  after(async () => {
    await Promise.all(open.map((c) => c.close()));
    await ens?.close();
  });

  it('a frozen server is noticed within a third of the session timeout; the client moves on with its session', async (t) => {
    // Freeze a follower: a frozen leader also stalls the ensemble itself until the followers
    // give up on it (syncLimit ticks), which is the ensemble's timing, not the client's.
    const leader = await ens.leader();
    let c = await connect();
    for (let i = 0; i < 20 && memberOf(c) === leader; i++) {
      await c.close();
      c = await connect();
    }
    const frozen = memberOf(c);
    assert.notEqual(frozen, leader, 'found a client on a follower');

    const session = c.sessionId;
    await c.mkdirp('/ens');
    await c.create('/ens/eph', Buffer.from('mine'), 'ephemeral');
    const events: { ev: string; at: number }[] = [];
    for (const ev of ['disconnected', 'connected', 'expired', 'session'])
      c.on(ev, () => events.push({ ev, at: wallNow() }));

    const frozenAt = wallNow();
    frozen.pause();
    try {
      const lost = await waitFor(() => events.find((e) => e.ev === 'disconnected'), {
        timeoutMs: SESSION_MS * 2,
        what: "'disconnected'",
      });
      const detectMs = lost.at - frozenAt;
      t.diagnostic(`connection loss reported ${detectMs.toFixed(0)} ms after the freeze`);
      assert.ok(detectMs <= SESSION_MS / 3 + DETECT_MARGIN_MS, `reported after ${detectMs.toFixed(0)} ms`);

      const back = await waitFor(() => events.find((e) => e.ev === 'connected'), {
        timeoutMs: SESSION_MS * 3,
        what: "'connected' again",
      });
      t.diagnostic(`reconnected ${(back.at - frozenAt).toFixed(0)} ms after the freeze, to ${c.server}`);
      assert.notEqual(memberOf(c), frozen, 'reconnected to another member');
      assert.equal(c.sessionId, session, 'same session');
      assert.deepEqual(
        events.map((e) => e.ev),
        ['disconnected', 'connected'],
      );
      const eph = await c.get('/ens/eph');
      assert.equal(eph.stat.ephemeralOwner, session, 'its ephemeral survived');
      assert.equal(eph.data?.toString(), 'mine');
    } finally {
      frozen.resume();
    }
    await ens.ready();
  });

  it('with one of three members stopped, reads and writes go on, and the member catches up on return', async (t) => {
    const c = await connect();
    await c.mkdirp('/ens/data');
    const leader = await ens.leader();
    // Stop the leader: the harder case (the other two must elect a new one).
    const t0 = wallNow();
    await leader.stop();
    const newLeader = await ens.leader(10000);
    t.diagnostic(`new leader ${newLeader.id} after ${(wallNow() - t0).toFixed(0)} ms`);
    assert.notEqual(newLeader, leader);

    for (let i = 0; i < 20; i++) {
      await waitFor(
        async () => {
          await c.set('/ens/data', Buffer.from(`w${i}`));
          return true;
        },
        { timeoutMs: SESSION_MS * 3, what: `write ${i} with a member down` },
      );
    }
    assert.equal((await c.get('/ens/data')).data?.toString(), 'w19');
    const created = await c.create('/ens/data/child-', Buffer.from('x'), 'persistent_sequential');
    assert.deepEqual(await c.children('/ens/data'), [created.split('/').at(-1)]);

    // A client that can reach only the surviving members works as well.
    const survivors = ens.members
      .filter((m) => m !== leader)
      .map((m) => m.address)
      .join(',');
    const s = await connect(survivors);
    assert.equal((await s.get('/ens/data')).data?.toString(), 'w19');

    // The stopped member comes back on its own data and serves what was written meanwhile.
    await leader.start();
    const onlyIt = await connect(leader.address);
    await waitFor(async () => (await onlyIt.get('/ens/data')).data?.toString() === 'w19', {
      timeoutMs: 5000,
      what: 'the returning member to catch up',
    });
  });
});
