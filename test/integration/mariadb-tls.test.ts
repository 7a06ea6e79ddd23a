import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig, readMysqlTls, Secret, type Config, type MysqlTls } from '../../core/config';
import { MysqlConnection, MysqlError } from '../../core/mysql/connection';
import type { ServerState } from '../../core/mysql/flavor';
import { mariadb } from '../../core/mysql/mariadb';
import { openAdmin } from '../../core/ops/admin';
import { NodeConnections } from '../../core/ops/connections';
import { repointReplicas } from '../../core/ops/promote';
import {
  mysqlConfigSection,
  secretOf,
  startMariaDB,
  TEST_CREDENTIALS,
  type MariaDBCluster,
  type MariaDBInstance,
} from '../../devenv/mariadb';
import { makeTestCertificates, type TestCertificates } from '../../devenv/tls';
import { withCluster } from '../../devenv/cluster';
import { waitFor } from '../../devenv/wait';

/**
 * TLS to MariaDB as an operator sets it up: servers with their certificates and
 * require_secure_transport=ON, a config whose `mysql.tls` names the CA and a client certificate.
 * Given such servers, a connection without TLS is refused; zkmha's admin connections (core/ops,
 * from the config) are encrypted; and replication set up through the flavor's CHANGE MASTER — the
 * same path a failover's re-point takes — runs over TLS where the same CHANGE MASTER without it is
 * refused by the master.
 */
const ER_ACCESS_DENIED = 1045;

async function sslCipher(conn: MysqlConnection): Promise<string> {
  const [row] = await conn.query(`SHOW SESSION STATUS LIKE 'Ssl_cipher'`);
  return String(row?.Value ?? '');
}

async function stateOf(db: MariaDBInstance): Promise<ServerState> {
  const conn = await db.connect('admin');
  try {
    return await mariadb.readState(conn);
  } finally {
    await conn.close();
  }
}

/** The replica's IO thread, once it either runs or has failed to connect at least once. */
async function ioOutcome(replica: MariaDBInstance): Promise<{ running: boolean; error: string }> {
  return waitFor(
    async () => {
      const r = (await stateOf(replica)).replica;
      if (r === null) return null;
      if (r.ioRunning) return { running: true, error: '' };
      return r.lastIoError !== '' ? { running: false, error: r.lastIoError } : null;
    },
    { timeoutMs: 10000, what: `${replica.node}'s IO thread to connect or fail` },
  );
}

async function slaveStatus(replica: MariaDBInstance): Promise<Record<string, unknown>> {
  const [s] = await replica.query('SHOW SLAVE STATUS');
  assert.ok(s !== undefined, `${replica.node} has a replication configuration`);
  return s;
}

const replicationTo = (master: MariaDBInstance, tls: MysqlTls | undefined) => ({
  host: master.host,
  port: master.port,
  user: TEST_CREDENTIALS.repl.user,
  password: secretOf('repl'),
  semiSync: false,
  gtidMode: 'slave_pos' as const,
  tls,
});

describe('MariaDB with require_secure_transport=ON: admin connections and replication over TLS', () => {
  let certs: TestCertificates;
  /** A CA of its own: it signed nothing the servers present. */
  let strangerCa: TestCertificates;
  let cluster: MariaDBCluster;
  let master: MariaDBInstance;
  let replica: MariaDBInstance;
  let dir: string;
  let cfg: Config;

  before(async () => {
    [certs, strangerCa] = await Promise.all([makeTestCertificates(), makeTestCertificates()]);
    cluster = await startMariaDB({ count: 2, replication: false, tls: certs });
    [master, replica] = cluster.instances as [MariaDBInstance, MariaDBInstance];
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-tls-config-'));
    const file = path.join(dir, 'mha.yaml');
    fs.writeFileSync(
      file,
      ['zookeeper: { hosts: "127.0.0.1:2181" }', ...mysqlConfigSection(dir, { tls: certs })].join('\n') +
        '\n',
    );
    cfg = loadConfig(file);
    await master.query('CREATE TABLE app.t (id INT PRIMARY KEY)');
    await master.query('INSERT INTO app.t VALUES (1)');
  });
  after(async () => {
    await cluster?.close();
    certs?.remove();
    strangerCa?.remove();
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a connection without TLS, with the right account and password', async () => {
    const err = await MysqlConnection.open(
      { host: master.host, port: master.port },
      { user: cfg.mysql.user, password: cfg.mysql.password, connectTimeoutMs: 2000 },
    ).then(
      (c) => {
        c.destroy();
        return assert.fail('a plain connection was accepted');
      },
      (e: unknown) => e,
    );
    assert.ok(err instanceof MysqlError, String(err));
    assert.equal(err.errno, ER_ACCESS_DENIED);
    assert.equal(err.kind, 'auth');
  });

  it('opens admin connections from the config over TLS: Ssl_cipher is set, the CA verified', async () => {
    assert.ok(cfg.mysql.tls?.certFile !== undefined, 'the config names a client certificate');
    const admin = await openAdmin(cfg, master.node);
    try {
      assert.notEqual(await sslCipher(admin), '');
    } finally {
      await admin.close();
    }
    const conns = NodeConnections.fromConfig(cfg.mysql);
    try {
      assert.notEqual(await conns.run(replica.node, sslCipher), '');
    } finally {
      await conns.closeAll();
    }
  });

  it('keeps the local socket plain: MariaDB counts it as secure transport', async () => {
    const conn = await MysqlConnection.open(
      { socketPath: master.socket },
      { user: cfg.mysql.user, password: cfg.mysql.password, connectTimeoutMs: 2000, tls: cfg.mysql.tls },
    );
    try {
      assert.equal(await sslCipher(conn), '');
    } finally {
      await conn.close();
    }
  });

  it('refuses a server whose certificate another CA signed, even without the name check', async () => {
    const tls = readMysqlTls({ ca: strangerCa.ca, verifyServerCert: false });
    await assert.rejects(
      MysqlConnection.open(
        { host: master.host, port: master.port },
        { user: cfg.mysql.user, password: cfg.mysql.password, connectTimeoutMs: 2000, tls },
      ),
      (err: unknown) => err instanceof MysqlError && err.sqlCode === 'HANDSHAKE_SSL_ERROR',
    );
  });

  it('replication: the master refuses CHANGE MASTER without TLS; with mysql.tls the IO thread runs over TLS', async () => {
    // The same CHANGE MASTER without TLS: require_secure_transport on the master refuses it.
    await replica.connect('admin').then(async (c) => {
      try {
        await mariadb.replicateFrom(c, replicationTo(master, undefined));
      } finally {
        await c.close();
      }
    });
    const plain = await ioOutcome(replica);
    assert.equal(plain.running, false, 'a replication connection without TLS is refused');
    assert.match(plain.error, /Access denied for user 'repl'/);

    // Re-pointed as a failover does (core/ops on the config's node connections): TLS from mysql.tls.
    const conns = NodeConnections.fromConfig(cfg.mysql);
    try {
      const res = await repointReplicas({ flavor: mariadb, conns }, [replica.node], master.node, {
        replication: { user: cfg.mysql.replicationUser, password: cfg.mysql.replicationPassword },
        semiSync: false,
        timeoutMs: 5000,
      });
      assert.deepEqual(res.get(replica.node), { ok: true });
    } finally {
      await conns.closeAll();
    }
    const tlsOutcome = await ioOutcome(replica);
    assert.deepEqual(tlsOutcome, { running: true, error: '' });
    const s = await slaveStatus(replica);
    assert.deepEqual(
      [
        s.Master_SSL_Allowed,
        s.Master_SSL_CA_File,
        s.Master_SSL_Cert,
        s.Master_SSL_Key,
        s.Master_SSL_Verify_Server_Cert,
      ],
      ['Yes', certs.ca, certs.clientCert, certs.clientKey, 'Yes'],
    );
    // The master sees the replication connection (its dump thread), and data flows through it.
    const dumps = await master.query(
      `SELECT USER FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`,
    );
    assert.deepEqual(
      dumps.map((d) => d.USER),
      [TEST_CREDENTIALS.repl.user],
    );
    await master.query('INSERT INTO app.t VALUES (2)');
    await cluster.waitReplicated({ master, replicas: [replica] });
    const rows = await replica.query('SELECT id FROM app.t ORDER BY id');
    assert.deepEqual(
      rows.map((r) => Number(r.id)),
      [1, 2],
    );
  });

  it('a CA-only mysql.tls clears a client certificate set before (CHANGE MASTER keeps what it is not told)', async () => {
    const caOnly = readMysqlTls({ ca: certs.ca, verifyServerCert: true });
    const c = await replica.connect('admin');
    try {
      await mariadb.replicateFrom(c, replicationTo(master, caOnly));
    } finally {
      await c.close();
    }
    assert.deepEqual(await ioOutcome(replica), { running: true, error: '' });
    const s = await slaveStatus(replica);
    assert.deepEqual(
      [s.Master_SSL_Allowed, s.Master_SSL_CA_File, s.Master_SSL_Cert, s.Master_SSL_Key],
      ['Yes', certs.ca, '', ''],
    );
  });

  it('replication refuses a master whose certificate the configured CA did not sign', async () => {
    const c = await replica.connect('admin');
    try {
      await mariadb.replicateFrom(
        c,
        replicationTo(master, readMysqlTls({ ca: strangerCa.ca, verifyServerCert: false })),
      );
    } finally {
      await c.close();
    }
    const out = await ioOutcome(replica);
    assert.equal(out.running, false);
    assert.match(out.error, /SSL connection error/);
  });
});

describe('mysql.tls verifyServerCert: the name in the server certificate', () => {
  let certs: TestCertificates;
  let cluster: MariaDBCluster;
  let master: MariaDBInstance;
  let replica: MariaDBInstance;

  before(async () => {
    // Signed by the CA, but for another host than the 127.0.0.1 zkmha connects to.
    certs = await makeTestCertificates({ serverNames: ['DNS:db-elsewhere.invalid'] });
    cluster = await startMariaDB({ count: 2, replication: false, tls: certs });
    [master, replica] = cluster.instances as [MariaDBInstance, MariaDBInstance];
  });
  after(async () => {
    await cluster?.close();
    certs?.remove();
  });

  const admin = (tls: MysqlTls) =>
    MysqlConnection.open(
      { host: master.host, port: master.port },
      {
        user: TEST_CREDENTIALS.admin.user,
        password: new Secret(TEST_CREDENTIALS.admin.password),
        connectTimeoutMs: 2000,
        tls,
      },
    );

  it('true (the default): an admin connection to a server whose certificate names another host is refused', async () => {
    await assert.rejects(admin(readMysqlTls({ ca: certs.ca, verifyServerCert: true })), (err: unknown) => {
      assert.ok(err instanceof MysqlError, String(err));
      // The address connected to is what is checked (not 'localhost', Node's fallback for an IP).
      assert.match(err.message, /IP: 127\.0\.0\.1 is not in the cert's list/);
      return true;
    });
  });

  it('false: the same server is accepted (CA-signed), over TLS', async () => {
    const conn = await admin(readMysqlTls({ ca: certs.ca, verifyServerCert: false }));
    try {
      assert.notEqual(await sslCipher(conn), '');
    } finally {
      await conn.close();
    }
  });

  it('replication checks the name the same way: refused with true, running with false', async () => {
    const repoint = async (verifyServerCert: boolean) => {
      const c = await replica.connect('admin');
      try {
        await mariadb.replicateFrom(
          c,
          replicationTo(master, readMysqlTls({ ca: certs.ca, verifyServerCert })),
        );
      } finally {
        await c.close();
      }
      return ioOutcome(replica);
    };
    const strict = await repoint(true);
    assert.equal(strict.running, false);
    assert.match(strict.error, /SSL connection error/);
    assert.equal((await slaveStatus(replica)).Master_SSL_Verify_Server_Cert, 'Yes');
    assert.deepEqual(await repoint(false), { running: true, error: '' });
    assert.equal((await slaveStatus(replica)).Master_SSL_Verify_Server_Cert, 'No');
  });
});

describe('a failover with TLS required everywhere', () => {
  let certs: TestCertificates;
  before(async () => {
    certs = await makeTestCertificates();
  });
  after(() => certs?.remove());

  it("the dead master is replaced and the replicas are re-pointed over TLS (the failover steps take mysql.tls from the workers' connections)", () =>
    withCluster({ tls: certs, semiSync: true }, async (c) => {
      const [old] = c.nodes as [string];
      await c.startClients();
      await c.startServer('s1');
      const w = await c.startWriter();
      await w.waitForAcks(10);

      await c.instance(old).kill();
      const m = await c.waitForNewMaster({ notNode: old });
      await w.waitForAcks(20);
      await w.stop();
      await c.assertInvariants({ master: m.node, writer: w });
      // Every remaining replica was re-pointed by the failover with the config's files.
      for (const node of c.nodes.filter((n) => n !== old && n !== m.node)) {
        const s = await slaveStatus(c.instance(node));
        assert.deepEqual(
          [s.Master_Host, s.Master_Port, s.Slave_IO_Running, s.Master_SSL_Allowed],
          [m.node.split(':')[0], Number(m.node.split(':')[1]), 'Yes', 'Yes'],
          `${node} replicates from ${m.node} over TLS`,
        );
        assert.deepEqual(
          [s.Master_SSL_CA_File, s.Master_SSL_Cert, s.Master_SSL_Key, s.Master_SSL_Verify_Server_Cert],
          [certs.ca, certs.clientCert, certs.clientKey, 'Yes'],
        );
      }
      const ev = (await c.history()).filter((h) => h.kind === 'failover');
      assert.equal(ev.length, 1);
    }));
});
