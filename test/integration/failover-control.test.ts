import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecord, whiteSchema, type TaskRecord } from '../../core/records';
import { alertOf } from '../../core/view';
import { withCluster } from '../../devenv/cluster';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../../devenv/zookeeper';

/**
 * Issue 3, scenarios 4, 5 and 7: what holds an automatic failover back (maintenance, anti-flap)
 * and what carries one through (a worker dying in the middle of it).
 */
describe('failover control', () => {
  let zk: ZkCluster;
  before(async () => {
    zk = await startZooKeeper();
  });
  after(async () => {
    await zk?.close();
  });

  it('4. white/<group> set, master killed: no failover, history says why; unwhite lets it fail over', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [old] = c.nodes as [string];
      await c.startClients();
      await c.startServer('s1');
      await c.startServer('s2');
      const white = c.paths.white(c.group);
      await c.zkClient.create(
        white,
        encodeRecord(whiteSchema, { v: 1, reason: 'kernel upgrade', by: 'test', at: Date.now() }, white),
      );

      await c.instance(old).kill();
      const ev = await waitFor(
        async () => (await c.history()).find((h) => h.kind === 'failover-suppressed'),
        { timeoutMs: 10000, what: 'failover-suppressed history event' },
      );
      assert.equal(ev.from, old);
      assert.equal(ev.detail.reason, 'white');
      assert.match(String(ev.detail.note), /maintenance/);
      const view = await c.view();
      assert.equal(view.master?.record.node, old, 'no failover while white');
      assert.equal(view.master?.record.epoch, 1);
      assert.equal(view.route?.record.write, old, 'not even fenced');
      assert.equal(view.task, null);
      assert.equal(
        (await c.history()).filter((h) => h.kind === 'failover-suppressed').length,
        1,
        'recorded once, not on every look',
      );

      // Monitoring goes on: the end of maintenance lets the failover through.
      await c.zkClient.delete(white);
      const m = await c.waitForNewMaster({ notNode: old });
      const w = await c.startWriter();
      await w.waitForAcks(20);
      await w.stop();
      await c.assertInvariants({ master: m.node, writer: w });
    }));

  it('5. the worker holding the lock SIGKILLed in the middle of a failover: the other completes it', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [old] = c.nodes as [string];
      await c.startClients();
      // s1 stops (fault injection) right before promoting, with the task recorded at that step.
      const s1 = await c.startServer('s1', { env: { MHA_FAULT_PAUSE_BEFORE_STEP: 'promote:60000' } });
      const w = await c.startWriter();
      await w.waitForAcks(20);

      await c.instance(old).kill();
      const task: TaskRecord = await waitFor(
        async () => {
          const t = (await c.view()).task?.record;
          return t !== undefined && t.step === 'promote' && t.worker === 's1' ? t : null;
        },
        { timeoutMs: 10000, what: 'task/ at step promote, owned by s1' },
      );
      assert.notEqual(task.candidate, null);
      assert.equal((await c.route()).write, null, 'fenced: no writes anywhere while the failover is open');

      await c.startServer('s2');
      await s1.kill('SIGKILL');
      const m = await c.waitForNewMaster({ notNode: old, timeoutMs: 15000 });
      assert.equal(m.node, task.candidate, 'the resuming worker keeps the recorded candidate');
      assert.equal(m.epoch, task.epoch);
      await w.waitForAcks(20);
      await w.stop();
      await c.assertInvariants({ master: m.node, writer: w });

      const ev = (await c.history()).filter((h) => h.kind === 'failover');
      assert.equal(ev.length, 1);
      assert.equal(ev[0]!.detail.worker, 's2');
      assert.deepEqual(
        ev[0]!.steps.map((s) => s.name),
        ['confirm', 'fence', 'choose', 'drain', 'append', 'promote', 'repoint', 'commit'],
        'steps done by s1 are kept, none repeated',
      );
    }));

  it('the candidate dies after its promotion, before the commit: it is not committed; the failover chooses again', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [old] = c.nodes as [string];
      await c.startClients();
      // The worker stops (fault injection) right before its commit, with the candidate promoted.
      await c.startServer('s1', { env: { MHA_FAULT_PAUSE_BEFORE_STEP: 'commit:1500' } });
      const w0 = await c.startWriter();
      await w0.waitForAcks(20);
      await w0.stop();
      // Every replica holds every acknowledged row, so losing the candidate too loses none.
      await c.db.waitReplicated();

      await c.instance(old).kill();
      const task: TaskRecord = await waitFor(
        async () => {
          const t = (await c.view()).task?.record;
          return t !== undefined && t.step === 'commit' ? t : null;
        },
        { timeoutMs: 10000, what: 'task/ at step commit' },
      );
      const dead = task.candidate!;
      await c.instance(dead).kill();

      const m = await c.waitForNewMaster({ notNode: old, timeoutMs: 20000 });
      assert.notEqual(m.node, dead, 'the dead candidate is never committed');
      assert.equal(m.epoch, task.epoch);
      const failed = (await c.history()).find((h) => h.kind === 'failover-failed');
      assert.ok(failed, 'the failed commit is recorded');
      assert.equal(failed.detail.step, 'commit');
      assert.match(String(failed.detail.error), /gone before the commit/);
      const ev = (await c.history()).filter((h) => h.kind === 'failover');
      assert.equal(ev.length, 1);
      assert.equal(ev[0]!.to, m.node);
      const w = await c.startWriter();
      await w.waitForAcks(10);
      await w.stop();
      await c.assertInvariants({ master: m.node, writer: w, noLostRows: true });
      assert.ok(w0.acks.every((a) => a.node === old));
      const have = await c.rowIds(m.node);
      assert.deepEqual(
        w0.acks.filter((a) => !have.has(a.id)),
        [],
        'no row acknowledged before the failure is missing',
      );
    }));

  it('7. master killed twice within the block period: the second is not automatic, the alert says why; acknowledging lets it go', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [first] = c.nodes as [string];
      await c.startClients();
      await c.startServer('s1');
      await c.startServer('s2');
      await c.instance(first).kill();
      const m1 = await c.waitForNewMaster({ notNode: first });

      await c.instance(m1.node).kill();
      const blocked = await waitFor(async () => alertOf(await c.view(), 'antiflap-blocked'), {
        timeoutMs: 10000,
        what: 'antiflap-blocked alert',
      });
      assert.equal(blocked.record.detail.oldMaster, m1.node);
      assert.match(String(blocked.record.detail.note), /recoveryBlockSeconds/);
      assert.match(String(blocked.record.detail.note), /mha alerts --clear/);
      const ev = await waitFor(async () => (await c.history()).find((h) => h.kind === 'failover-blocked'), {
        timeoutMs: 5000,
        what: 'failover-blocked history event',
      });
      assert.equal(ev.detail.reason, 'antiflap');
      const view = await c.view();
      assert.equal(view.master?.record.node, m1.node, 'no second automatic failover');
      assert.equal(view.master?.record.epoch, 2);

      // Acknowledge the first failover (what `mha alerts --clear` does): the second goes through.
      const ack = alertOf(view, 'failover')!;
      await c.zkClient.delete(c.paths.watchDown(c.group, 'failover'), ack.version);
      const m2 = await c.waitForNewMaster({ notNode: m1.node });
      assert.equal(m2.epoch, 3);
      const w = await c.startWriter();
      await w.waitForAcks(20);
      await w.stop();
      await c.assertInvariants({ master: m2.node, writer: w });
    }));
});
