import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { alertOf } from '../../core/view';
import { withCluster } from '../../devenv/cluster';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../../devenv/zookeeper';

/**
 * Issue 3, scenarios 1, 2, 3 and 8: a group of three MariaDB (semi-sync), three heartbeat
 * clients and two server workers as child processes, one ZooKeeper shared by the scenarios.
 * Every scenario writes through the route while the failure happens and ends with the design
 * §9 invariants (one writable master, replicas following it, one epoch, no acknowledged row lost).
 */
describe('failover of a dead master', () => {
  let zk: ZkCluster;
  before(async () => {
    zk = await startZooKeeper();
  });
  after(async () => {
    await zk?.close();
  });

  it('1. mysqld of the master SIGKILLed: the most advanced replica becomes master, the other follows it', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [old, r1, r2] = c.nodes as [string, string, string];
      // Make the replica that would win a name tie the LESS advanced one: the choice must be by GTID.
      const [behind, ahead] = r1 < r2 ? [r1, r2] : [r2, r1];
      await c.startClients();
      await c.startServer('s1');
      await c.startServer('s2');
      const w = await c.startWriter();
      await w.waitForAcks(10);
      await c.instance(behind).query('STOP SLAVE IO_THREAD');
      await w.waitForAcks(20);

      await c.instance(old).kill();
      const m = await c.waitForNewMaster({ notNode: old });
      assert.equal(m.node, ahead, 'the replica that received the most is promoted');
      assert.equal(m.epoch, 2);
      assert.equal(m.reason, 'failover');
      await w.waitForAcks(20);
      await w.stop();
      await c.assertInvariants({ master: ahead, writer: w });

      const view = await c.view();
      assert.equal(
        view.members.find((x) => x.node === old)?.rejoin?.record.newMaster,
        ahead,
        'rejoin/<old> names the new master',
      );
      const ev = (await c.history()).filter((h) => h.kind === 'failover');
      assert.equal(ev.length, 1, 'exactly one failover happened (two workers)');
      assert.deepEqual(
        ev[0]!.steps.map((s) => s.name),
        ['confirm', 'fence', 'choose', 'drain', 'append', 'promote', 'repoint', 'commit'],
      );
      assert.ok(alertOf(view, 'failover'), 'the failover alert (anti-flap acknowledgement) is raised');
    }));

  it('2. mysqld and its client SIGKILLed (host death): failover after the session expires', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [old] = c.nodes as [string];
      await c.startClients();
      await c.startServer('s1');
      await c.startServer('s2');
      const w = await c.startWriter();
      await w.waitForAcks(20);

      await c.client(old)!.kill('SIGKILL');
      await c.instance(old).kill();
      // Nothing can happen before ZooKeeper expires the dead client's session (2 s here).
      const m = await c.waitForNewMaster({ notNode: old, timeoutMs: 10000 });
      assert.notEqual(m.node, old);
      await w.waitForAcks(20);
      await w.stop();
      await c.assertInvariants({ master: m.node, writer: w });
      const ev = (await c.history()).filter((h) => h.kind === 'failover');
      assert.equal(ev.length, 1);
      assert.equal(ev[0]!.detail.how, 'refused', 'confirmed by a refused connection (no agent left to ask)');
    }));

  it('3. only the master client SIGKILLed, mysqld healthy: no failover, watch_down alert, resolved when the heartbeat returns', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [old] = c.nodes as [string];
      await c.startClients();
      await c.startServer('s1');
      await c.startServer('s2');
      const w = await c.startWriter();
      await w.waitForAcks(10);
      const before = await c.master();

      await c.client(old)!.kill('SIGKILL');
      const alert = await waitFor(async () => alertOf(await c.view(), undefined), {
        timeoutMs: 10000,
        what: 'watch_down/<group> alert',
      });
      assert.equal(alert.record.kind, 'heartbeat-lost-mysql-alive');
      assert.equal(alert.record.detail.node, old);
      // Writes go on on the same master throughout.
      await w.waitForAcks(20);
      const view = await c.view();
      assert.deepEqual(view.master?.record, before, 'master/ unchanged');
      assert.equal(view.route?.record.write, old);
      assert.equal(view.task, null);
      assert.equal((await c.history()).filter((h) => h.kind === 'failover').length, 0);

      await c.startClient(old);
      await waitFor(async () => alertOf(await c.view(), undefined) === undefined, {
        timeoutMs: 10000,
        what: 'alert resolved',
      });
      await w.stop();
      await c.assertInvariants({ master: old, writer: w });
    }));

  it('8. workers started after the master already died: the failover happens at start-up', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [old] = c.nodes as [string];
      await c.startClients();
      await c.instance(old).kill();
      await waitFor(async () => (await c.zkClient.exists(c.paths.online(old))) === null, {
        timeoutMs: 10000,
        what: 'online/<old master> gone',
      });
      await c.startServer('s1');
      await c.startServer('s2');
      const m = await c.waitForNewMaster({ notNode: old });
      const w = await c.startWriter();
      await w.waitForAcks(20);
      await w.stop();
      await c.assertInvariants({ master: m.node, writer: w });

      // SIGTERM: a clean stop (exit 0) that takes servers/<id> away with it.
      const s2 = c.server('s2')!;
      await s2.kill('SIGTERM');
      assert.equal(await s2.exited, 0);
      assert.equal(await c.zkClient.exists(c.paths.server('s2')), null);
    }));

  it('bad configuration: exit 2 with a one-line reason, nothing started', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-badcfg-'));
    try {
      const file = path.join(dir, 'mha.yaml');
      fs.writeFileSync(file, `zookeeper:\n  hosts: ${zk.members[0]!.address}\n`, { mode: 0o600 });
      const r = spawnSync(
        process.execPath,
        [path.resolve(__dirname, '..', '..', 'bin', 'mha.js'), 'server', '--config', file],
        { encoding: 'utf8', timeout: 20000 },
      );
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^mha: config: .*section 'server' is required/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
