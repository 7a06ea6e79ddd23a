import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecord, whiteSchema } from '../../core/records';
import { alertOf } from '../../core/view';
import { withCluster, type Cluster } from '../../devenv/cluster';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../../devenv/zookeeper';

/**
 * A master that stays read-only while its heartbeat stays (design §4 self-fence whose ZooKeeper
 * outage ended within the session, or a fence by hand): online/<master> never vanishes, so no
 * failover is triggered, yet nobody can write. The workers make it writable again when it is
 * still the one master (server/readonly.ts), or only alert during maintenance.
 */
describe('master read-only with its heartbeat alive', () => {
  let zk: ZkCluster;
  before(async () => {
    zk = await startZooKeeper();
  });
  after(async () => {
    await zk?.close();
  });

  const readOnly = async (c: Cluster, node: string): Promise<boolean> => {
    const [r] = await c.instance(node).query('SELECT @@read_only AS ro');
    return Number(r?.ro) === 1;
  };
  /** Waits until the master's heartbeat publishes read_only=ON (what the workers react to). */
  const heartbeatSaysReadOnly = (c: Cluster, node: string) =>
    waitFor(async () => (await c.view()).members.find((m) => m.node === node)?.online?.readOnly === true, {
      timeoutMs: 5000,
      what: `online/${node} with readOnly: true`,
    });

  it('fenced by hand while its agent stays connected: writable again through the same master, history and alert say so', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [m] = c.nodes as [string];
      await c.startClients();
      await c.startServer('s1');
      await c.startServer('s2');
      const w = await c.startWriter();
      await w.waitForAcks(20);

      await c.instance(m).query('SET GLOBAL read_only = ON');
      const ev = await waitFor(async () => (await c.history()).find((h) => h.kind === 'master-read-only'), {
        timeoutMs: 10000,
        what: 'master-read-only history event',
      });
      assert.equal(ev.detail.action, 'unfenced');
      assert.deepEqual([ev.from, ev.to, ev.epoch], [m, m, 1]);
      assert.ok(
        ev.steps.some((s) => s.name === 'unfence' && s.ok),
        JSON.stringify(ev.steps),
      );
      const alert = alertOf(await c.view(), 'master-read-only');
      assert.ok(alert, 'watch_down/<group>__master-read-only');
      assert.equal(alert.record.detail.action, 'unfenced');
      assert.equal(alert.record.detail.master, m);

      // Writes flow again, on the same master, at the same epoch: no master change was needed.
      const n = w.acks.length;
      await w.waitForAcks(20);
      assert.ok(w.acks.slice(n).every((a) => a.node === m));
      await w.stop();
      await c.assertInvariants({ master: m, writer: w });
      assert.equal((await c.master()).epoch, 1);
      const hist = await c.history();
      assert.equal(
        hist.filter((h) => h.kind === 'master-read-only').length,
        1,
        'one event, not one per worker',
      );
      assert.equal(hist.filter((h) => h.kind === 'failover').length, 0);
    }));

  it('while white/<group> is set: stays read-only with an alert only; un-fenced once maintenance ends', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [m] = c.nodes as [string];
      await c.startClients();
      await c.startServer('s1');
      const white = c.paths.white(c.group);
      await c.zkClient.create(
        white,
        encodeRecord(whiteSchema, { v: 1, reason: 'kernel upgrade', by: 'test', at: Date.now() }, white),
      );

      await c.instance(m).query('SET GLOBAL read_only = ON');
      await heartbeatSaysReadOnly(c, m);
      const alert = await waitFor(async () => alertOf(await c.view(), 'master-read-only'), {
        timeoutMs: 10000,
        what: 'master-read-only alert',
      });
      assert.equal(alert.record.detail.action, 'none');
      assert.match(String(alert.record.detail.why), /maintenance/);
      // The worker decided (the alert is its decision): nothing was changed.
      assert.equal(await readOnly(c, m), true, 'left read-only during maintenance');
      assert.equal((await c.history()).filter((h) => h.kind === 'master-read-only').length, 0);
      const view = await c.view();
      assert.deepEqual([view.master?.record.node, view.master?.record.epoch], [m, 1]);
      assert.equal(view.route?.record.write, m);

      // Maintenance over: the same watch un-fences it.
      await c.zkClient.delete(white);
      const ev = await waitFor(async () => (await c.history()).find((h) => h.kind === 'master-read-only'), {
        timeoutMs: 10000,
        what: 'master-read-only history event after unwhite',
      });
      assert.equal(ev.detail.action, 'unfenced');
      const w = await c.startWriter();
      await w.waitForAcks(10);
      await w.stop();
      await c.assertInvariants({ master: m, writer: w });
    }));
});
