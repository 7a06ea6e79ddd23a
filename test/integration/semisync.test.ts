import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mariadb } from '../../core/mysql/mariadb';
import { promoteSemiSync, REQUIRED_MASTER_TIMEOUT_MS } from '../../core/semisync';
import { alertOf } from '../../core/view';
import { runMha } from '../../devenv/cli';
import { withCluster, type Cluster } from '../../devenv/cluster';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../../devenv/zookeeper';

/**
 * Semi-sync as an enforced, visible policy (issue 10 §1): promotions set the master's wait from
 * the group's policy, a master that falls back to async raises `semi-sync-off` and `mha status`
 * says acknowledged writes are at risk; `required` never falls back (commits wait instead).
 */
describe('semi-sync policy', () => {
  let zk: ZkCluster;
  before(async () => {
    zk = await startZooKeeper();
  });
  after(async () => {
    await zk?.close();
  });

  let nextId = 1_000_000;
  const insert = (c: Cluster, node: string) =>
    c.instance(node).query('INSERT INTO app.t (id, node, at) VALUES (?, ?, ?)', [nextId++, node, Date.now()]);
  const globalOf = async (c: Cluster, node: string, name: string): Promise<string> => {
    const [r] = await c.instance(node).query(`SELECT @@GLOBAL.${name} AS v`);
    return String(r?.v);
  };
  const statusOf = async (c: Cluster, node: string, name: string): Promise<string> => {
    const [r] = await c
      .instance(node)
      .query('SELECT VARIABLE_VALUE AS v FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?', [
        name.toUpperCase(),
      ]);
    return String(r?.v);
  };
  type StatusJson = {
    groups: Array<{ semiSync: { policy: string; state: string; clients: number | null } }>;
  };
  const status = async (c: Cluster, config: string, json: boolean): Promise<string> => {
    const r = await runMha(['status', c.group, ...(json ? ['--json'] : []), '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const semiOf = async (c: Cluster, config: string) =>
    (JSON.parse(await status(c, config, true)) as StatusJson).groups[0]!.semiSync;

  it("'on': the promotion sets the group's timeout; falling back to async alerts and shows, recovery clears it", () =>
    withCluster({ zk, semiSync: true, settings: { semiSync: 'on', semiSyncTimeoutMs: 300 } }, async (c) => {
      const config = c.writeConfig('cli', 'cli');
      const [old] = c.nodes as [string];
      await c.startClients();
      await c.startServer('s1');
      await c.instance(old).kill();
      const m = (await c.waitForNewMaster({ notNode: old, timeoutMs: 15000 })).node;
      const replica = c.nodes.find((n) => n !== old && n !== m)!;

      // What the promotion and the re-point set, from the group's settings (not mysqld's defaults).
      assert.equal(await globalOf(c, m, 'rpl_semi_sync_master_enabled'), '1');
      assert.equal(await globalOf(c, m, 'rpl_semi_sync_master_timeout'), '300');
      assert.equal(await globalOf(c, m, 'rpl_semi_sync_master_wait_point'), 'AFTER_SYNC');
      assert.equal(await globalOf(c, replica, 'rpl_semi_sync_slave_enabled'), '1');
      await waitFor(async () => (await statusOf(c, m, 'Rpl_semi_sync_master_clients')) === '1', {
        timeoutMs: 10000,
        what: 'the re-pointed replica acknowledges semi-synchronously',
      });
      await waitFor(async () => (await semiOf(c, config))?.state === 'ok', {
        timeoutMs: 10000,
        what: 'state ok',
      });

      // The only acknowledging replica stops: the next commit waits 300 ms, then the master is async.
      await c.instance(replica).query('STOP SLAVE IO_THREAD');
      await insert(c, m);
      assert.equal(await statusOf(c, m, 'Rpl_semi_sync_master_status'), 'OFF');
      const alert = await waitFor(async () => alertOf(await c.view(), 'semi-sync-off'), {
        timeoutMs: 10000,
        what: 'watch_down/<group>__semi-sync-off',
      });
      assert.equal(alert.record.detail.node, m);
      assert.equal(alert.record.detail.policy, 'on');
      const semi = await semiOf(c, config);
      assert.equal(semi.state, 'at-risk');
      assert.equal(semi.policy, 'on');
      assert.match(await status(c, config, false), /acknowledged writes at risk/);

      // The replica comes back and catches up: semi-sync is in effect again, the alert goes.
      await c.instance(replica).query('START SLAVE IO_THREAD');
      await waitFor(
        async () => {
          await insert(c, m);
          return (await statusOf(c, m, 'Rpl_semi_sync_master_status')) === 'ON';
        },
        { timeoutMs: 10000, what: 'semi-sync in effect again' },
      );
      await waitFor(async () => alertOf(await c.view(), 'semi-sync-off') === undefined, {
        timeoutMs: 10000,
        what: 'semi-sync-off alert cleared',
      });
      assert.doesNotMatch(await status(c, config, false), /at risk/);
    }));

  it("'required': with no acknowledging replica a commit waits instead of going async, and nothing alerts", () =>
    withCluster({ zk, semiSync: true, settings: { semiSync: 'required' } }, async (c) => {
      const config = c.writeConfig('cli', 'cli');
      const [m, r1, r2] = c.nodes as [string, string, string];
      // What every promotion does for this policy (the group was built without one).
      const conn = await c.instance(m).connect('admin');
      try {
        await mariadb.promote(conn, promoteSemiSync({ semiSync: 'required', semiSyncTimeoutMs: 1000 }));
      } finally {
        await conn.close();
      }
      assert.equal(await globalOf(c, m, 'rpl_semi_sync_master_timeout'), String(REQUIRED_MASTER_TIMEOUT_MS));
      await c.startClients();
      await c.startServer('s1');
      await insert(c, m);

      for (const r of [r1, r2]) await c.instance(r).query('STOP SLAVE IO_THREAD');
      await waitFor(async () => (await statusOf(c, m, 'Rpl_semi_sync_master_clients')) === '0', {
        timeoutMs: 10000,
        what: 'no semi-sync client left',
      });
      // On its own connection: the instance's shared one must stay free for the checks below.
      const writer = await c.instance(m).connect('app', { queryTimeoutMs: 60000 });
      const pending = writer
        .exec('INSERT INTO t (id, node, at) VALUES (?, ?, ?)', [nextId++, m, Date.now()])
        .finally(() => writer.close());
      let settled = false;
      void pending.then(
        () => (settled = true),
        () => (settled = true),
      );
      await waitFor(async () => Number(await statusOf(c, m, 'Rpl_semi_sync_master_wait_sessions')) >= 1, {
        timeoutMs: 10000,
        what: 'the commit waits for an acknowledgement',
      });
      await waitFor(async () => (await semiOf(c, config))?.state === 'waiting', {
        timeoutMs: 10000,
        what: "status says 'waiting'",
      });
      // Nothing to await here: the claim is that something does NOT happen. Watch for twice the
      // `on` default (1 s) whether the master degrades.
      const until = Date.now() + 2000;
      while (Date.now() < until) {
        assert.equal(await statusOf(c, m, 'Rpl_semi_sync_master_status'), 'ON');
        assert.equal(settled, false, 'the commit was acknowledged without a replica');
        await new Promise((res) => setTimeout(res, 100));
      }

      await c.instance(r1).query('START SLAVE IO_THREAD');
      await pending;
      await waitFor(async () => (await semiOf(c, config))?.state === 'ok', {
        timeoutMs: 10000,
        what: 'state ok',
      });
      assert.equal(alertOf(await c.view(), 'semi-sync-off'), undefined);
    }));
});
