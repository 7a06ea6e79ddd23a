import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { withCluster } from '../../devenv/cluster';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../../devenv/zookeeper';

/** Issue 3, scenarios 6 and 9: read-pool upkeep, and a priority-0 replica that is most advanced. */
describe('read pool and promotion rules', () => {
  let zk: ZkCluster;
  before(async () => {
    zk = await startZooKeeper();
  });
  after(async () => {
    await zk?.close();
  });

  it('6. a replica killed leaves the read list with a slave_down entry; restarted, it comes back by itself', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [master, r1, r2] = c.nodes as [string, string, string];
      await c.startClients();
      await c.startServer('s1');
      await c.startServer('s2');
      const w = await c.startWriter();
      assert.deepEqual([...(await c.route()).read].sort(), [r1, r2].sort());

      await c.instance(r1).kill();
      const down = await waitFor(
        async () => {
          const v = await c.view();
          const sd = v.slaveDown.get(r1);
          return sd !== undefined && !v.route!.record.read.includes(r1) ? sd : null;
        },
        { timeoutMs: 10000, what: 'r1 out of the read pool with a slave_down entry' },
      );
      assert.match(down.record.reason, /down|heartbeat|stopped/);
      let route = await c.route();
      assert.deepEqual(route.read, [r2], 'the healthy replica stays');
      assert.equal(route.write, master);
      assert.equal(route.epoch, 1, 'read-pool changes keep the epoch');

      // The replica's mysqld comes back (as a normal start would, replication resumes).
      await c.instance(r1).start({ readOnly: true });
      await c.instance(r1).query('START SLAVE');
      await waitFor(
        async () => {
          const v = await c.view();
          return v.route!.record.read.includes(r1) && !v.slaveDown.has(r1);
        },
        { timeoutMs: 15000, what: 'r1 back in the read pool, slave_down entry gone' },
      );
      route = await c.route();
      assert.deepEqual([...route.read].sort(), [r1, r2].sort());
      assert.equal(route.epoch, 1);

      // A replica whose replication stops leaves the pool too, and returns when it runs again.
      await c.instance(r2).query('STOP SLAVE');
      await waitFor(async () => !(await c.route()).read.includes(r2) && (await c.view()).slaveDown.has(r2), {
        timeoutMs: 10000,
        what: 'r2 out after STOP SLAVE',
      });
      await c.instance(r2).query('START SLAVE');
      await waitFor(async () => (await c.route()).read.includes(r2), {
        timeoutMs: 10000,
        what: 'r2 back after START SLAVE',
      });

      await w.waitForAcks(10);
      await w.stop();
      await c.assertInvariants({ master, writer: w });
    }));

  it('9. a priority-0 replica is never promoted, even when most advanced; nothing it holds is lost', () =>
    withCluster(
      { zk, semiSync: true, hosts: [{ priority: 1 }, { priority: 0 }, { priority: 2 }] },
      async (c) => {
        const [old, never, candidate] = c.nodes as [string, string, string];
        await c.startClients();
        await c.startServer('s1');
        await c.startServer('s2');
        const w = await c.startWriter();
        await w.waitForAcks(10);
        // The promotable replica falls behind; only the priority-0 one receives (and acknowledges) the rest.
        await c.instance(candidate).query('STOP SLAVE IO_THREAD');
        await w.waitForAcks(30);

        await c.instance(old).kill();
        const m = await c.waitForNewMaster({ notNode: old });
        assert.equal(m.node, candidate, 'priority 0 is skipped');
        await w.waitForAcks(10);
        await w.stop();
        await c.assertInvariants({ master: candidate, writer: w, noLostRows: true });
        const ev = (await c.history()).find((h) => h.kind === 'failover')!;
        assert.ok(
          ev.steps.some((s) => s.name === 'catchup'),
          'the candidate caught up from the priority-0 replica',
        );
        assert.equal((ev.detail.catchUpFrom as { node: string } | null)?.node, never);
      },
    ));
});
