import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { isZkmhaError } from '../../core/errors';
import { compareGtidPos, formatGtidPos, parseGtidPos } from '../../core/gtid';
import { MysqlError, type MysqlConnection } from '../../core/mysql/connection';
import { mariadb } from '../../core/mysql/mariadb';
import { flavorFor } from '../../core/mysql';
import { waitApplied } from '../../core/ops/drain';
import {
  secretOf,
  startMariaDB,
  TEST_CREDENTIALS,
  type MariaDBCluster,
  type MariaDBInstance,
} from '../../devenv/mariadb';
import { waitFor } from '../../devenv/wait';

/**
 * The MariaDB flavor against real servers, as one failover scenario: given a master and two
 * replicas, read their state, fence the master, drain and promote a replica, re-point the other
 * replica and the old master to it — and check that data flows at every step.
 */
const ER_OPTION_PREVENTS_STATEMENT = 1290;

async function withConn<T>(db: MariaDBInstance, fn: (c: MysqlConnection) => Promise<T>): Promise<T> {
  const conn = await db.connect('admin');
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

async function rowCount(db: MariaDBInstance): Promise<number> {
  return Number((await db.query('SELECT COUNT(*) AS n FROM app.f'))[0]?.n);
}

async function waitRows(db: MariaDBInstance, n: number): Promise<void> {
  await waitFor(async () => (await rowCount(db)) === n, {
    timeoutMs: 10000,
    what: `${n} rows on ${db.node}`,
  });
}

function replicationOf(
  master: MariaDBInstance,
  opts: { semiSync: boolean; gtidMode: 'slave_pos' | 'current_pos' },
) {
  return {
    host: master.host,
    port: master.port,
    user: TEST_CREDENTIALS.repl.user,
    password: secretOf('repl'),
    ...opts,
  };
}

describe('mariadb flavor: state, fencing, drain, promote, re-point', () => {
  let cluster: MariaDBCluster;
  let master: MariaDBInstance;
  let r1: MariaDBInstance;
  let r2: MariaDBInstance;

  before(async () => {
    cluster = await startMariaDB({ count: 3, replication: true });
    [master, r1, r2] = cluster.instances as [MariaDBInstance, MariaDBInstance, MariaDBInstance];
    await master.query('CREATE TABLE app.f (id INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(40))');
    await master.query(`INSERT INTO app.f (who) VALUES ('first')`);
    await cluster.waitReplicated();
  });
  after(async () => {
    await cluster?.close();
  });

  it('flavorFor picks the MariaDB implementation and refuses an unimplemented flavor', () => {
    assert.equal(flavorFor('mariadb'), mariadb);
    assert.throws(
      () => flavorFor('mysql'),
      (err: unknown) => isZkmhaError(err, 'OPERATION_FAILED'),
    );
  });

  it('readState on the master: writable, no replication, binlog position of its own writes', async () => {
    const st = await withConn(master, (c) => mariadb.readState(c));
    assert.equal(st.serverId, 1);
    assert.match(st.version, /MariaDB/);
    assert.equal(st.readOnly, false);
    assert.equal(st.replica, null);
    assert.equal(formatGtidPos(parseGtidPos(st.gtidBinlogPos)), '0-1-2');
    assert.equal(st.gtidCurrentPos, st.gtidBinlogPos);
    assert.equal(st.gtidSlavePos, '');
    assert.deepEqual(
      [st.semiSyncMasterEnabled, st.semiSyncMasterStatus, st.semiSyncSlaveEnabled],
      [false, false, false],
    );
  });

  it('readState on a replica: read-only, threads running with GTID, received and applied positions', async () => {
    const st = await withConn(r1, (c) => mariadb.readState(c));
    assert.equal(st.serverId, 2);
    assert.equal(st.readOnly, true);
    assert.ok(st.replica !== null);
    assert.equal(st.replica.masterHost, master.host);
    assert.equal(st.replica.masterPort, master.port);
    assert.equal(st.replica.ioRunning, true);
    assert.equal(st.replica.sqlRunning, true);
    assert.equal(st.replica.usingGtid, 'Slave_Pos');
    assert.equal(st.replica.lagSeconds, 0);
    assert.equal(st.replica.gtidIoPos, '0-1-2');
    assert.equal(st.gtidSlavePos, '0-1-2');
    assert.equal(st.replica.lastIoError, '');
    assert.equal(st.replica.lastSqlError, '');
  });

  it('binlogFiles lists the files in the binlog dir and replicaHosts the attached replicas', async () => {
    const files = await withConn(master, (c) => mariadb.binlogFiles(c));
    assert.ok(files.length >= 1);
    const onDisk = new Set(fs.readdirSync(master.binlogDir));
    for (const f of files) {
      assert.ok(onDisk.has(f.name), `${f.name} in ${master.binlogDir}`);
      assert.equal(f.size, fs.statSync(`${master.binlogDir}/${f.name}`).size);
    }
    const hosts = await withConn(master, (c) => mariadb.replicaHosts(c));
    assert.deepEqual(
      hosts.map((h) => `${h.serverId}@${h.host}:${h.port}`).sort(),
      [`2@${r1.node}`, `3@${r2.node}`].sort(),
    );
  });

  it('waitForGtid: true once applied, false on timeout, BAD_RECORD for a bad position', async () => {
    await withConn(r1, async (c) => {
      assert.equal(await mariadb.waitForGtid(c, '0-1-2', 2000), true);
      assert.equal(await mariadb.waitForGtid(c, '0-1-1002', 200), false);
      await assert.rejects(mariadb.waitForGtid(c, "0-1-2', 0) OR SLEEP(5", 200), (err: unknown) =>
        isZkmhaError(err, 'BAD_RECORD'),
      );
    });
  });

  it('setParallelApply configures a running replica (restarting it) and is a no-op when it matches', async () => {
    await withConn(r2, async (c) => {
      await mariadb.setParallelApply(c, { threads: 4, mode: 'conservative', replicaFlushLogAtCommit: 2 });
      const [v] = await c.query(`SELECT @@slave_parallel_threads AS t, @@slave_parallel_mode AS m`);
      assert.equal(Number(v?.t), 4);
      assert.equal(String(v?.m), 'conservative');
      const [f] = await c.query(`SELECT @@innodb_flush_log_at_trx_commit AS f`);
      assert.equal(Number(f?.f), 2, 'a replica applies without an fsync per commit');
      const st = await mariadb.readState(c);
      assert.ok(st.replica?.ioRunning !== false || st.replica?.ioConnecting === true, 'IO thread restarted');
      assert.equal(st.replica?.sqlRunning, true, 'SQL thread restarted');
      await mariadb.setParallelApply(c, { threads: 4, mode: 'conservative', replicaFlushLogAtCommit: 2 });
      await assert.rejects(
        mariadb.setParallelApply(c, { threads: -1, mode: 'optimistic', replicaFlushLogAtCommit: 2 }),
        (err: unknown) => isZkmhaError(err, 'BAD_USAGE'),
      );
    });
    await master.query(`INSERT INTO app.f (who) VALUES ('parallel')`);
    await waitRows(r2, await rowCount(master));
  });

  it('waitApplied: stalled when apply does not move, applied once it runs again', async () => {
    await withConn(r2, async (c) => {
      await c.exec('STOP SLAVE SQL_THREAD');
      try {
        await master.query(`INSERT INTO app.f (who) VALUES ('stalled')`);
        const [m] = await master.query('SELECT @@gtid_binlog_pos AS p');
        const target = String(m?.p);
        await waitFor(async () => (await mariadb.readState(c)).replica?.gtidIoPos === target, {
          timeoutMs: 10000,
          what: 'r2 received the row',
        });
        const r = await waitApplied(mariadb, c, r2.node, target, { stallMs: 300, maxMs: 10_000 });
        assert.equal(r.kind, 'stalled');
        assert.match(
          r.kind === 'stalled' ? r.why : '',
          /applied nothing for \d+ ms with 1 transactions left/,
        );
      } finally {
        await c.exec('START SLAVE SQL_THREAD');
      }
      const [m] = await master.query('SELECT @@gtid_binlog_pos AS p');
      const r = await waitApplied(mariadb, c, r2.node, String(m?.p), { stallMs: 5000, maxMs: 10_000 });
      assert.equal(r.kind, 'applied');
    });
  });

  it('the app user cannot write while read_only=ON; setReadOnly toggles it', async () => {
    const app = await master.connect('app');
    try {
      await app.exec(`INSERT INTO f (who) VALUES ('app-before')`);
      await withConn(master, (c) => mariadb.setReadOnly(c, true));
      await assert.rejects(
        app.exec(`INSERT INTO f (who) VALUES ('app-refused')`),
        (err: unknown) => err instanceof MysqlError && err.errno === ER_OPTION_PREVENTS_STATEMENT,
      );
      await withConn(master, (c) => mariadb.setReadOnly(c, false));
      await app.exec(`INSERT INTO f (who) VALUES ('app-after')`);
      assert.equal((await master.query(`SELECT 1 FROM app.f WHERE who = 'app-refused'`)).length, 0);
    } finally {
      await app.close();
    }
  });

  it('setReadOnly + killClientConnections fences an app connection and keeps replication and kept users', async () => {
    const app = await master.connect('app');
    const keptAdmin = await master.connect('admin');
    try {
      await app.exec(`INSERT INTO f (who) VALUES ('before-fence')`);
      const killed = await withConn(master, async (c) => {
        await mariadb.setReadOnly(c, true);
        return mariadb.killClientConnections(c, { keepUsers: [TEST_CREDENTIALS.admin.user] });
      });
      assert.equal(killed, 1, 'the app connection is the only client outside the kept users');
      await assert.rejects(app.exec(`INSERT INTO f (who) VALUES ('after-fence')`), MysqlError);
      // A new application connection is refused writes too.
      const app2 = await master.connect('app');
      try {
        await assert.rejects(
          app2.exec(`INSERT INTO f (who) VALUES ('after-fence-2')`),
          (err: unknown) => err instanceof MysqlError && err.errno === ER_OPTION_PREVENTS_STATEMENT,
        );
      } finally {
        await app2.close();
      }
      assert.equal((await keptAdmin.query('SELECT 1 AS one')).length, 1, 'kept user survives');
      const hosts = await withConn(master, (c) => mariadb.replicaHosts(c));
      assert.equal(hosts.length, 2, 'replication dump threads survive fencing');
      const st = await withConn(r2, (c) => mariadb.readState(c));
      assert.equal(st.replica?.ioRunning, true);
    } finally {
      app.destroy();
      await keptAdmin.close();
    }
    // Kill without keeping admin: the other admin session goes too, our own stays.
    const other = await master.connect('admin');
    await withConn(master, async (c) => {
      const killed = await mariadb.killClientConnections(c, { keepUsers: [] });
      assert.ok(killed >= 1, `killed ${killed}`); // `other`, and the test helper's own cached session
      assert.equal((await c.query('SELECT 1 AS one')).length, 1, 'the calling connection survives');
      await mariadb.setReadOnly(c, false);
    });
    await assert.rejects(other.query('SELECT 1'), MysqlError);
    other.destroy();
  });

  it('drain and promote r1 (semi-sync), re-point r2 to it; data flows and acknowledgements come from r2', async () => {
    await master.query(`INSERT INTO app.f (who) VALUES ('last-on-old-master')`);
    const expected = await rowCount(master);
    await cluster.waitReplicated();
    await master.kill();

    // Drain: stop receiving, apply everything received.
    const received = await withConn(r1, async (c) => {
      await mariadb.stopIoThread(c);
      const st = await mariadb.readState(c);
      assert.equal(st.replica?.ioRunning, false);
      assert.equal(await mariadb.waitForGtid(c, st.replica!.gtidIoPos, 5000), true);
      return st.replica!.gtidIoPos;
    });
    assert.equal(await rowCount(r1), expected);

    await withConn(r1, (c) => mariadb.promote(c, { semiSync: true }));
    await r1.query('SET GLOBAL innodb_flush_log_at_trx_commit = 2'); // as a replica may run
    await withConn(r1, (c) => mariadb.promote(c, { semiSync: true })); // idempotent
    const [flush] = await r1.query('SELECT @@innodb_flush_log_at_trx_commit AS f');
    assert.equal(Number(flush?.f), 1, 'a new master makes every commit durable');
    const promoted = await withConn(r1, (c) => mariadb.readState(c));
    assert.equal(promoted.readOnly, false);
    assert.equal(promoted.replica, null);
    assert.equal(promoted.semiSyncMasterEnabled, true);
    assert.equal(promoted.semiSyncSlaveEnabled, false);
    assert.equal(promoted.gtidSlavePos, received, 'RESET SLAVE ALL keeps gtid_slave_pos');

    const opts = replicationOf(r1, { semiSync: true, gtidMode: 'slave_pos' });
    await withConn(r2, (c) => mariadb.replicateFrom(c, opts));
    await withConn(r2, (c) => mariadb.replicateFrom(c, opts)); // idempotent
    await waitFor(
      async () => {
        const st = await withConn(r2, (c) => mariadb.readState(c));
        return st.replica?.ioRunning === true && st.replica.sqlRunning ? st : null;
      },
      { timeoutMs: 10000, what: 'r2 replicating from r1' },
    );
    await waitFor(
      async () =>
        Number((await r1.query(`SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'`))[0]?.Value) === 1,
      { timeoutMs: 10000, what: 'r2 attached as semi-sync client' },
    );

    const app = await r1.connect('app');
    try {
      await app.exec(`INSERT INTO f (who) VALUES ('on-new-master')`);
    } finally {
      await app.close();
    }
    await waitRows(r2, expected + 1);
    const st2 = await withConn(r2, (c) => mariadb.readState(c));
    assert.equal(st2.readOnly, true);
    assert.equal(st2.replica?.masterPort, r1.port);
    assert.equal(st2.replica?.usingGtid, 'Slave_Pos');
    assert.equal(st2.semiSyncSlaveEnabled, true);
    assert.equal(st2.semiSyncMasterEnabled, false);
    const [yes] = await r1.query(`SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_yes_tx'`);
    assert.ok(Number(yes?.Value) >= 1, 'the write was acknowledged by r2');
    assert.equal((await withConn(r1, (c) => mariadb.readState(c))).semiSyncMasterStatus, true);
  });

  it('the old master rejoins as a replica of the new one from its current position and catches up', async () => {
    await master.start({ readOnly: true });
    const before = await withConn(master, (c) => mariadb.readState(c));
    const newMaster = await withConn(r1, (c) => mariadb.readState(c));
    assert.equal(compareGtidPos(newMaster.gtidBinlogPos, before.gtidBinlogPos), 'ahead');

    await withConn(master, (c) =>
      mariadb.replicateFrom(c, replicationOf(r1, { semiSync: false, gtidMode: 'current_pos' })),
    );
    await waitRows(master, await rowCount(r1));
    const st = await withConn(master, (c) => mariadb.readState(c));
    assert.equal(st.replica?.usingGtid, 'Slave_Pos');
    assert.equal(st.replica?.masterPort, r1.port);
    assert.equal(st.readOnly, true);
    assert.equal(compareGtidPos(st.gtidCurrentPos, newMaster.gtidBinlogPos), 'equal');
    // Its applied position is exact, so MASTER_GTID_WAIT (drain, catch-up) answers on it.
    assert.equal(compareGtidPos(st.gtidSlavePos, newMaster.gtidBinlogPos), 'equal');
    assert.equal(await withConn(master, (c) => mariadb.waitForGtid(c, newMaster.gtidBinlogPos, 2000)), true);
  });

  it('setGtidSlavePos validates and sets the applied position while replication is stopped', async () => {
    await withConn(r2, async (c) => {
      const pos = (await mariadb.readState(c)).gtidSlavePos;
      await c.exec('STOP SLAVE');
      await assert.rejects(mariadb.setGtidSlavePos(c, 'not-a-gtid'), (err: unknown) =>
        isZkmhaError(err, 'BAD_RECORD'),
      );
      await mariadb.setGtidSlavePos(c, ' 0-1-1 ');
      assert.equal((await mariadb.readState(c)).gtidSlavePos, '0-1-1');
      await mariadb.setGtidSlavePos(c, pos);
      await c.exec('START SLAVE');
      assert.equal((await mariadb.readState(c)).gtidSlavePos, pos);
    });
    await cluster.waitReplicated({ master: r1, replicas: [r2, master] });
  });

  it('replicateFrom rejects a bad host or port before touching the server', async () => {
    await withConn(r2, async (c) => {
      const good = replicationOf(r1, { semiSync: false, gtidMode: 'slave_pos' });
      await assert.rejects(
        mariadb.replicateFrom(c, { ...good, host: "x', MASTER_PORT=1 --" }),
        (err: unknown) => isZkmhaError(err, 'BAD_NAME'),
      );
      await assert.rejects(mariadb.replicateFrom(c, { ...good, port: 70000 }), (err: unknown) =>
        isZkmhaError(err, 'BAD_NAME'),
      );
      const st = await mariadb.readState(c);
      assert.equal(st.replica?.masterPort, r1.port, 'nothing changed');
      assert.equal(st.replica?.ioRunning, true);
    });
  });
});
