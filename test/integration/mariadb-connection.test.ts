import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Secret } from '../../core/config';
import { classifyMysqlError, MysqlConnection, MysqlError } from '../../core/mysql/connection';
import {
  startMariaDB,
  TEST_CREDENTIALS,
  type MariaDBCluster,
  type MariaDBInstance,
} from '../../devenv/mariadb';
import { waitFor } from '../../devenv/wait';

/**
 * core/mysql/connection against a real mariadbd: what a failure detector sees when the server is
 * down (refused), hung (timeout) or refuses the credentials (auth) — and the test helper's
 * kill/pause/stop/start life cycle that produces those states.
 */
const admin = TEST_CREDENTIALS.admin;

function openAdmin(db: MariaDBInstance, connectTimeoutMs = 1000): Promise<MysqlConnection> {
  return MysqlConnection.open(
    { host: db.host, port: db.port },
    { user: admin.user, password: new Secret(admin.password), connectTimeoutMs },
  );
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected the operation to fail');
}

describe('mysql connection: error kinds against a real server', () => {
  let cluster: MariaDBCluster;
  let db: MariaDBInstance;

  before(async () => {
    cluster = await startMariaDB({ count: 1, replication: false });
    db = cluster.instances[0]!;
  });
  after(async () => {
    await cluster?.close();
  });

  it('answers queries with rows and statements with a result header', async () => {
    const conn = await openAdmin(db);
    try {
      const rows = await conn.query('SELECT @@server_id AS id, ? AS echo', ['x']);
      assert.deepEqual(
        rows.map((r) => ({ id: Number(r.id), echo: r.echo as unknown })),
        [{ id: 1, echo: 'x' }],
      );
      const res = await conn.exec('CREATE TABLE app.conn_t (id INT PRIMARY KEY)');
      assert.equal(res.affectedRows, 0);
      const ins = await conn.exec('INSERT INTO app.conn_t VALUES (?), (?)', [1, 2]);
      assert.equal(ins.affectedRows, 2);
    } finally {
      await conn.close();
    }
  });

  it('wrong password → auth (mysqld is alive)', async () => {
    const err = await errorOf(
      MysqlConnection.open(
        { host: db.host, port: db.port },
        { user: admin.user, password: new Secret('not-the-password'), connectTimeoutMs: 1000 },
      ),
    );
    assert.equal(classifyMysqlError(err), 'auth');
    assert.ok(err instanceof MysqlError && err.code === 'MYSQL_ERROR' && err.errno === 1045, String(err));
    assert.ok(!(err as Error).message.includes('not-the-password'));
  });

  it('a missing socket file → refused', async () => {
    const err = await errorOf(
      MysqlConnection.open(
        { socketPath: path.join(cluster.dir, 'no-such.sock') },
        { user: admin.user, password: new Secret(admin.password), connectTimeoutMs: 1000 },
      ),
    );
    assert.equal(classifyMysqlError(err), 'refused');
  });

  it('connects over the unix socket as well', async () => {
    const conn = await MysqlConnection.open(
      { socketPath: db.socket },
      { user: admin.user, password: new Secret(admin.password), connectTimeoutMs: 1000 },
    );
    try {
      const [row] = await conn.query('SELECT @@port AS port');
      assert.equal(Number(row?.port), db.port);
    } finally {
      await conn.close();
    }
  });

  it('a sensitive statement keeps its values and the server text out of the error', async () => {
    const conn = await openAdmin(db);
    try {
      const plain = await errorOf(conn.exec('SELECT ? FROM app.no_such_table', ['visible-value']));
      assert.match((plain as Error).message, /no_such_table/);
      const hidden = await errorOf(
        conn.exec('SELECT ? FROM app.no_such_table', ['secret-value'], { sensitive: true, what: 'probe' }),
      );
      assert.ok(hidden instanceof MysqlError && hidden.errno === 1146, String(hidden));
      assert.doesNotMatch(hidden.message, /secret-value|no_such_table/);
      assert.match(hidden.message, /probe/);
      // An SQL error does not break the connection.
      assert.equal(conn.broken, false);
      assert.equal((await conn.query('SELECT 1 AS one')).length, 1);
    } finally {
      await conn.close();
    }
  });

  it('a hung server (SIGSTOP) → timeout for a query and for a new connection; resume recovers', async () => {
    const conn = await openAdmin(db);
    await db.pause();
    try {
      const qErr = await errorOf(conn.query('SELECT 1', undefined, { timeoutMs: 300 }));
      assert.equal(classifyMysqlError(qErr), 'timeout');
      assert.ok(qErr instanceof MysqlError && qErr.code === 'MYSQL_TIMEOUT');
      assert.equal(conn.broken, true, 'a timed-out connection must not be reused');
      const again = await errorOf(conn.query('SELECT 1'));
      assert.equal(classifyMysqlError(again), 'other');

      const cErr = await errorOf(openAdmin(db, 300));
      assert.equal(classifyMysqlError(cErr), 'timeout');
    } finally {
      await db.resume();
      conn.destroy();
    }
    const rows = await db.query('SELECT COUNT(*) AS n FROM app.conn_t');
    assert.equal(Number(rows[0]?.n), 2);
  });

  it('a killed server → the open connection breaks and a new one is refused; start() brings the data back', async () => {
    const conn = await openAdmin(db);
    const idle = await openAdmin(db);
    const lost: MysqlError[] = [];
    idle.onLost((err) => lost.push(err));
    const closedByUs = await openAdmin(db);
    let closedFired = false;
    closedByUs.onLost(() => (closedFired = true));
    await closedByUs.close();
    const oldPid = db.pid;
    await db.kill();
    assert.equal(db.running, false);
    // The idle connection reports the loss by itself, without a query (the heartbeat re-checks at once).
    await waitFor(() => lost.length > 0, { timeoutMs: 5000, what: 'onLost after SIGKILL' });
    assert.equal(lost.length, 1);
    assert.equal(idle.broken, true);
    assert.equal(closedFired, false, 'our own close is not a loss');
    const qErr = await errorOf(conn.query('SELECT 1'));
    assert.notEqual(classifyMysqlError(qErr), 'refused'); // a dropped connection alone is not proof
    assert.equal(conn.broken, true);
    const cErr = await errorOf(openAdmin(db));
    assert.equal(classifyMysqlError(cErr), 'refused');

    await db.start();
    assert.notEqual(db.pid, oldPid);
    const rows = await db.query('SELECT COUNT(*) AS n FROM app.conn_t');
    assert.equal(Number(rows[0]?.n), 2, 'committed rows survive SIGKILL');
  });

  it('stop() shuts down cleanly and start({ readOnly }) restarts on the same port', async () => {
    await db.stop();
    assert.equal(db.running, false);
    assert.match(db.logTail(5), /Shutdown complete/);
    await db.start({ readOnly: true });
    const [row] = await db.query('SELECT @@read_only AS ro, @@port AS port');
    assert.equal(Number(row?.ro), 1);
    assert.equal(Number(row?.port), db.port);
  });
});
