import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  decodeRecord,
  haproxySchema,
  historySchema,
  masterSchema,
  metaGroupSchema,
  metaHostSchema,
} from '../../core/records';
import { Zk } from '../../core/zk/client';
import { ZkPaths } from '../../core/zk/paths';
import { mysqlSnapshot, replicationOf, runMha, zkSnapshot, type MysqlSnapshot } from '../../devenv/cli';
import {
  mysqlConfigSection,
  startMariaDB,
  TEST_CREDENTIALS,
  type MariaDBCluster,
  type MariaDBInstance,
} from '../../devenv/mariadb';
import { freePort, freePorts } from '../../devenv/ports';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, testLogger, type ZkCluster } from '../../devenv/zookeeper';

/**
 * `mha add` on freshly initialised MariaDB instances (nothing configured): a working group on
 * success; on every kind of bad input a one-line reason, the right exit code, and ZooKeeper and
 * every mysqld exactly as before.
 */
describe('mha add', () => {
  let zkc: ZkCluster;
  let db: MariaDBCluster;
  let zk: Zk;
  let dir: string;
  let config: string;
  const root = '/mha-add';
  const paths = new ZkPaths(root);
  let n: MariaDBInstance[];
  let writePort: number;
  let readPort: number;

  before(async () => {
    [zkc, db] = await Promise.all([startZooKeeper(), startMariaDB({ count: 5, replication: false })]);
    n = [...db.instances];
    zk = await Zk.connect({
      hosts: zkc.connectString,
      sessionTimeoutMs: 4000,
      logger: testLogger('cli-add'),
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-cli-add-'));
    config = path.join(dir, 'mha.yaml');
    fs.writeFileSync(
      config,
      [
        'zookeeper:',
        `  hosts: "${zkc.connectString}"`,
        `  root: ${root}`,
        ...mysqlConfigSection(dir),
        '',
      ].join('\n'),
    );
    const ps = await freePorts(2);
    writePort = ps[0]!;
    readPort = ps[1]!;
    const init = await runMha(['init', '--config', config]);
    assert.equal(init.code, 0, init.stderr);
  });

  after(async () => {
    await zk?.close();
    await Promise.all([db?.close(), zkc?.close()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const add = (...args: string[]) => runMha(['add', ...args, '--config', config]);
  const nodes = (...i: number[]) => i.map((k) => n[k]!.node).join(',');
  const ports = () => ['--write-port', String(writePort), '--read-port', String(readPort)];

  /** Runs a refused `mha add` and proves nothing changed anywhere. */
  async function refused(args: string[], code: number, message: RegExp): Promise<void> {
    const zkBefore = await zkSnapshot(zk, root);
    const dbBefore: MysqlSnapshot[] = await Promise.all(n.map(mysqlSnapshot));
    const r = await add(...args);
    assert.equal(r.code, code, `exit code for ${args.join(' ')}: stdout ${r.stdout} stderr ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.deepEqual(await zkSnapshot(zk, root), zkBefore, 'ZooKeeper unchanged');
    assert.deepEqual(await Promise.all(n.map(mysqlSnapshot)), dbBefore, 'MySQL unchanged');
  }

  it('refuses bad usage with exit 2 before touching anything', async () => {
    await refused(['g1', '--nodes', nodes(0, 1), ...ports(), '--bogus'], 2, /unknown option '--bogus'/);
    await refused(
      ['g1', '--nodes', `${n[0]!.node},127.0.0.1`, ...ports()],
      2,
      /invalid node in --nodes '127\.0\.0\.1'/,
    );
    await refused(['g1', '--nodes', nodes(0, 0), ...ports()], 2, /listed twice/);
    await refused(['Bad', '--nodes', nodes(0, 1), ...ports()], 2, /invalid group name 'Bad'/);
    await refused(
      ['g1', '--nodes', nodes(0, 1), '--write-port', '70000', '--read-port', '1'],
      2,
      /invalid --write-port '70000'/,
    );
    await refused(
      ['g1', '--nodes', nodes(0, 1), ...ports(), '--master', n[2]!.node],
      2,
      /--master .* is not in --nodes/,
    );
    await refused(
      ['g1', '--nodes', nodes(0, 1), ...ports(), '--semi-sync', 'always'],
      2,
      /--semi-sync must be off, on or required \(got 'always'\)/,
    );
    await refused(
      ['g1', '--nodes', nodes(0, 1), ...ports(), '--semi-sync', 'required', '--semi-sync-timeout-ms', '500'],
      2,
      /--semi-sync-timeout-ms needs --semi-sync on/,
    );
    await refused(
      ['g1', '--nodes', nodes(0, 1), ...ports(), '--semi-sync', 'on', '--semi-sync-timeout-ms', '0'],
      2,
      /--semi-sync-timeout-ms must be an integer/,
    );
  });

  it('refuses an unreachable node with exit 1, naming it', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    await refused(
      ['g1', '--nodes', `${nodes(0, 1)},${dead}`, ...ports()],
      1,
      new RegExp(`connect ${dead.replace(/\./g, '\\.')}: .*ECONNREFUSED`),
    );
  });

  it('refuses errant GTIDs, naming the node and the transactions', async () => {
    // Local writes on instance 3: two transactions with its own server id.
    await n[3]!.query('CREATE TABLE app.stray (id INT PRIMARY KEY)');
    await n[3]!.query('INSERT INTO app.stray VALUES (1)');
    const [g] = await n[3]!.query('SELECT @@gtid_binlog_pos AS p');
    const tip = String(g?.p);
    assert.match(tip, /^0-4-\d+$/);
    await refused(
      ['g9', '--nodes', nodes(0, 3), ...ports(), '--master', n[0]!.node],
      1,
      new RegExp(
        `errant GTIDs: node ${n[3]!.node.replace(/\./g, '\\.')} has transactions the master ${n[0]!.node.replace(/\./g, '\\.')} lacks: .*${tip}`,
      ),
    );
  });

  it('builds a working group on three fresh instances', async () => {
    const r = await add('g1', '--nodes', nodes(0, 1, 2), ...ports(), '--semi-sync', '--json');
    assert.equal(r.code, 0, r.stderr);
    // --json: the documented shape (README, CLI for scripts).
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(
      [out.group, out.master, out.replicas, out.flavor, out.epoch, typeof out.why],
      ['g1', n[0]!.node, [n[1]!.node, n[2]!.node], 'mariadb', 1, 'string'],
    );

    // ZooKeeper records.
    const get = async <T>(p: string, schema: Parameters<typeof decodeRecord>[0]): Promise<T> =>
      decodeRecord(schema, (await zk.get(p)).data, p) as T;
    const meta = await get<ReturnType<typeof metaGroupSchema.parse>>(paths.metaGroup('g1'), metaGroupSchema);
    assert.deepEqual(meta.members, [n[0]!.node, n[1]!.node, n[2]!.node]);
    assert.equal(meta.writePort, writePort);
    assert.equal(meta.settings.semiSync, 'on', 'a bare --semi-sync is the on policy');
    assert.equal(meta.settings.semiSyncTimeoutMs, 1000);
    for (const i of [0, 1, 2]) {
      const h = await get<ReturnType<typeof metaHostSchema.parse>>(
        paths.metaHost(n[i]!.node),
        metaHostSchema,
      );
      assert.deepEqual([h.group, h.port, h.priority], ['g1', n[i]!.port, 1]);
    }
    const master = await get<ReturnType<typeof masterSchema.parse>>(paths.master('g1'), masterSchema);
    assert.deepEqual([master.node, master.epoch], [n[0]!.node, 1]);
    const route = await get<ReturnType<typeof haproxySchema.parse>>(paths.haproxy('g1'), haproxySchema);
    assert.deepEqual(route, { v: 1, epoch: 1, write: n[0]!.node, read: [n[1]!.node, n[2]!.node] });
    assert.equal(await zk.exists(paths.task('g1')), null, 'no task left');
    const events = await zk.children(paths.historyDir('g1'));
    assert.equal(events.length, 1);
    const ev = await get<ReturnType<typeof historySchema.parse>>(
      `${paths.historyDir('g1')}/${events[0]}`,
      historySchema,
    );
    assert.deepEqual([ev.kind, ev.to, ev.epoch], ['add', n[0]!.node, 1]);

    // MySQL: a writable master with semi-sync, read-only semi-sync replicas replicating from it.
    const m = await mysqlSnapshot(n[0]!);
    assert.deepEqual([m.readOnly, m.semiMaster, m.slave], ['0', '1', 'none']);
    // The policy's wait, set by zkmha (MariaDB's own default is 10 s).
    const [t] = await n[0]!.query('SELECT @@GLOBAL.rpl_semi_sync_master_timeout AS t');
    assert.equal(Number(t?.t), 1000);
    for (const i of [1, 2]) {
      const s = await mysqlSnapshot(n[i]!);
      assert.deepEqual([s.readOnly, s.semiSlave, s.semiMaster], ['1', '1', '0']);
      assert.deepEqual(await replicationOf(n[i]!), { master: n[0]!.node, running: true });
    }
    // And it replicates: a write on the master reaches both replicas.
    await n[0]!.query('CREATE TABLE app.added (id INT PRIMARY KEY)');
    await n[0]!.query('INSERT INTO app.added VALUES (42)');
    for (const i of [1, 2]) {
      await waitFor(
        async () => (await n[i]!.query('SELECT id FROM app.added').catch(() => [])).length === 1,
        { timeoutMs: 10000, what: `row on ${n[i]!.node}` },
      );
    }
  });

  it('leaves task/<group> (kind add) naming the step when acting fails midway', async () => {
    // The replication account can log in to the master-to-be but may not replicate from it.
    await n[3]!.query(`REVOKE REPLICATION SLAVE ON *.* FROM '${TEST_CREDENTIALS.repl.user}'@'%'`);
    const [w3, r3] = (await freePorts(2)) as [number, number];
    const r = await add(
      'g3',
      '--nodes',
      nodes(3, 4),
      '--master',
      n[3]!.node,
      '--write-port',
      String(w3),
      '--read-port',
      String(r3),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `${n[4]!.node.replace(/\./g, '\\.')} does not replicate from .*left ${root}/task/g3 at step 'await replication'`,
      ),
    );
    const nd = await zk.get(paths.task('g3'));
    const task = JSON.parse(nd.data!.toString('utf8')) as {
      kind: string;
      step: string;
      detail: { failed?: string };
    };
    assert.deepEqual([task.kind, task.step], ['add', 'await replication']);
    assert.match(task.detail.failed ?? '', /does not replicate/);
    assert.equal(await zk.exists(paths.metaGroup('g3')), null, 'no half-registered group');
    assert.equal(await zk.exists(paths.master('g3')), null);
  });

  it('refuses a group or a node that already exists', async () => {
    const [w2, r2] = (await freePorts(2)) as [number, number];
    await refused(
      ['g1', '--nodes', nodes(3), '--write-port', String(w2), '--read-port', String(r2)],
      1,
      /group 'g1' already exists/,
    );
    await refused(
      ['g2', '--nodes', nodes(3, 1), '--write-port', String(w2), '--read-port', String(r2)],
      1,
      new RegExp(`node ${n[1]!.node.replace(/\./g, '\\.')} already belongs to a group`),
    );
    await refused(
      ['g2', '--nodes', nodes(3), '--write-port', String(writePort), '--read-port', String(r2)],
      1,
      /port \d+ is already used by group 'g1'/,
    );
  });
});
