import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { MysqlError } from '../../core/mysql/connection';
import { startMariaDB, type MariaDBInstance } from '../../devenv/mariadb';
import { waitFor } from '../../devenv/wait';

/** The MariaDB test helper itself: what every other integration test builds on. */
const ER_OPTION_PREVENTS_STATEMENT = 1290;

describe('test env: startMariaDB', () => {
  it('yields a master and two replicas replicating with GTID, read_only on the replicas only', async (t) => {
    const cluster = await startMariaDB({ count: 3, replication: true });
    try {
      t.diagnostic(`3 instances with replication up in ${cluster.startupMs} ms`);
      const [master, ...replicas] = cluster.instances;
      assert.ok(master !== undefined && replicas.length === 2);
      assert.equal(new Set(cluster.instances.map((i) => i.port)).size, 3);
      assert.equal(new Set(cluster.instances.map((i) => i.datadir)).size, 3);

      const ids = await Promise.all(
        cluster.instances.map(async (i) => Number((await i.query('SELECT @@server_id AS id'))[0]?.id)),
      );
      assert.deepEqual(ids, [1, 2, 3]);

      for (const r of replicas) {
        const [s] = await r.query('SHOW SLAVE STATUS');
        assert.equal(s?.Slave_IO_Running, 'Yes');
        assert.equal(s?.Slave_SQL_Running, 'Yes');
        assert.equal(s?.Using_Gtid, 'Slave_Pos');
        assert.equal(Number(s?.Master_Port), master.port);
        assert.equal(Number((await r.query('SELECT @@read_only AS ro'))[0]?.ro), 1);
      }
      assert.equal(Number((await master.query('SELECT @@read_only AS ro'))[0]?.ro), 0);
      assert.equal((await master.query('SHOW SLAVE STATUS')).length, 0);

      // A write by the application on the master reaches both replicas.
      const app = await master.connect('app');
      try {
        await app.exec('CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))');
        // What an application (and `sysbench prepare`) needs on its own schema: secondary
        // indexes and schema changes.
        await app.exec('CREATE INDEX t_v ON t (v)');
        await app.exec('ALTER TABLE t ADD COLUMN w INT NULL');
        await app.exec('ALTER TABLE t DROP COLUMN w');
        await app.exec('INSERT INTO t VALUES (1, ?)', ['hello']);
      } finally {
        await app.close();
      }
      for (const r of replicas) {
        await waitFor(async () => (await r.query('SELECT v FROM app.t WHERE id = 1'))[0]?.v === 'hello', {
          timeoutMs: 10000,
          what: `row on ${r.node}`,
        });
      }
      const [m] = await master.query('SELECT @@gtid_binlog_pos AS p');
      for (const r of replicas) {
        const [s] = await r.query('SELECT @@gtid_slave_pos AS p');
        assert.equal(s?.p, m?.p);
      }
      // Binlogs land in binlogDir.
      assert.ok(fs.readdirSync(master.binlogDir).some((f) => /^mysql-bin\.\d+$/.test(f)));

      // The application account cannot write on a read-only replica.
      const appReplica = await replicas[0]!.connect('app');
      try {
        await assert.rejects(
          appReplica.exec('INSERT INTO t VALUES (2, ?)', ['nope']),
          (err: unknown) => err instanceof MysqlError && err.errno === ER_OPTION_PREVENTS_STATEMENT,
        );
      } finally {
        await appReplica.close();
      }
    } finally {
      await cluster.close();
    }
    assert.equal(fs.existsSync(cluster.dir), false, 'close() removes the temp dir');
    assert.ok(cluster.instances.every((i) => !i.running));
  });

  it('with replication: false yields independent writable servers (for mha add)', async () => {
    const cluster = await startMariaDB({ count: 2, replication: false });
    try {
      for (const i of cluster.instances) {
        const [row] = await i.query(
          'SELECT @@read_only AS ro, @@gtid_binlog_pos AS pos, @@gtid_strict_mode AS strict',
        );
        assert.equal(Number(row?.ro), 0);
        assert.equal(row?.pos, '');
        assert.equal(Number(row?.strict), 1);
        assert.equal((await i.query('SHOW SLAVE STATUS')).length, 0);
      }
      await cluster.instances[0]!.query('CREATE TABLE app.only_here (id INT PRIMARY KEY)');
      assert.equal((await cluster.instances[1]!.query(`SHOW TABLES FROM app LIKE 'only_here'`)).length, 0);
    } finally {
      await cluster.close();
    }
  });

  it('with semiSync: master side on the master, slave side on the replica, and writes are acknowledged', async () => {
    const cluster = await startMariaDB({ count: 2, replication: true, semiSync: true });
    try {
      const [master, replica] = cluster.instances as [MariaDBInstance, MariaDBInstance];
      const vars = async (i: MariaDBInstance) =>
        (
          await i.query(
            `SELECT @@rpl_semi_sync_master_enabled AS m, @@rpl_semi_sync_slave_enabled AS s,
               @@rpl_semi_sync_master_wait_point AS wp`,
          )
        )[0];
      const mv = await vars(master);
      const rv = await vars(replica);
      assert.deepEqual([Number(mv?.m), Number(mv?.s), mv?.wp], [1, 0, 'AFTER_SYNC']);
      assert.deepEqual([Number(rv?.m), Number(rv?.s)], [0, 1]);
      // The replica's semi-sync client is attached before the first write (not a fall-back to async).
      await waitFor(
        async () =>
          Number((await master.query(`SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'`))[0]?.Value) ===
          1,
        { timeoutMs: 10000, what: 'semi-sync client attached' },
      );
      await master.query('CREATE TABLE app.s (id INT PRIMARY KEY)');
      await master.query('INSERT INTO app.s VALUES (1)');
      const [yes] = await master.query(`SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_yes_tx'`);
      const [no] = await master.query(`SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_no_tx'`);
      assert.equal(Number(yes?.Value), 2, 'both transactions were acknowledged by the replica');
      assert.equal(Number(no?.Value), 0);
    } finally {
      await cluster.close();
    }
  });
});
