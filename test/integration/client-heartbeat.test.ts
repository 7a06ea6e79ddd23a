import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { startClient, type ClientHandle } from '../../client/main';
import { Secret, type Config } from '../../core/config';
import {
  decodeRecord,
  encodeRecord,
  agentSchema,
  masterSchema,
  metaGroupSchema,
  metaHostSchema,
  onlineSchema,
  rejoinSchema,
  taskSchema,
} from '../../core/records';
import { Zk, type NodeData } from '../../core/zk/client';
import { ZkPaths } from '../../core/zk/paths';
import {
  startMariaDB,
  TEST_CREDENTIALS,
  type MariaDBCluster,
  type MariaDBInstance,
} from '../../devenv/mariadb';
import { startZooKeeper, testLogger, type ZkCluster } from '../../devenv/zookeeper';
import { waitFor } from '../../devenv/wait';
import { track } from '../../devenv/reaper';

/**
 * The heartbeat client against a real ZooKeeper and three real MariaDB servers (0 = master,
 * 1 and 2 = replicas). Each scenario uses its own ZooKeeper root and its own clients, so pausing
 * ZooKeeper in one scenario only touches the clients of that scenario.
 */
const SESSION_MS = 1500;
const CHECK_MS = 150;
const GROUP = 'g1';

let zkc: ZkCluster;
let db: MariaDBCluster;
let zk: Zk; // the test's own session, for watching and writing records
let rootSeq = 0;
const log = testLogger('client-test');

function configFor(root: string, inst: MariaDBInstance, opts: { socket?: boolean } = {}): Config {
  return {
    file: '(test)',
    zookeeper: { hosts: zkc.connectString, root, sessionTimeoutMs: SESSION_MS },
    mysql: {
      user: TEST_CREDENTIALS.admin.user,
      password: new Secret(TEST_CREDENTIALS.admin.password),
      replicationUser: TEST_CREDENTIALS.repl.user,
      replicationPassword: new Secret(TEST_CREDENTIALS.repl.password),
      connectTimeoutMs: 300,
    },
    client: {
      node: inst.node,
      ...(opts.socket === true ? { socket: inst.socket } : {}),
      binlogDir: inst.binlogDir,
      dataDir: inst.dir,
      httpPort: 0,
      httpHost: '127.0.0.1',
      checkIntervalMs: CHECK_MS,
      failAfter: 3,
    },
    log: { level: 'silent' },
  };
}

/** A fresh root with the layout and one group: members 0..2, master instance 0. */
async function freshGroup(
  opts: { members?: readonly MariaDBInstance[]; maxReadLagSeconds?: number } = {},
): Promise<ZkPaths> {
  const paths = new ZkPaths(`/client${++rootSeq}`);
  for (const d of paths.allDirs()) await zk.mkdirp(d);
  const members = opts.members ?? db.instances;
  const m = db.instances[0]!;
  await zk.create(
    paths.metaGroup(GROUP),
    encodeRecord(
      metaGroupSchema,
      {
        v: 1,
        name: GROUP,
        flavor: 'mariadb',
        writePort: 3306,
        readPort: 3307,
        members: members.map((i) => i.node),
        settings: { maxReadLagSeconds: opts.maxReadLagSeconds ?? 30 },
      },
      'meta_group',
    ),
  );
  for (const i of db.instances) {
    await zk.create(
      paths.metaHost(i.node),
      encodeRecord(
        metaHostSchema,
        { v: 1, group: GROUP, host: i.host, port: i.port, priority: 1 },
        'meta_host',
      ),
    );
  }
  await zk.create(
    paths.master(GROUP),
    encodeRecord(masterSchema, { v: 1, node: m.node, epoch: 1, since: Date.now(), reason: 'test' }, 'master'),
  );
  return paths;
}

/** Follows a znode through a watch, so a test sees every value it took (also a short-lived absence). */
function follow(path: string) {
  const seen: Array<NodeData | null> = [];
  const w = zk.watchData(path, (v) => seen.push(v));
  return {
    get current(): NodeData | null | undefined {
      return seen[seen.length - 1];
    },
    sawAbsent: () => seen.some((v) => v === null),
    reset: () => seen.splice(0, seen.length - 1),
    cancel: () => w.cancel(),
  };
}

const online = async (paths: ZkPaths, inst: MariaDBInstance) => {
  const d = await zk.getOrNull(paths.online(inst.node));
  return d === null ? null : { record: decodeRecord(onlineSchema, d.data, 'online'), stat: d.stat };
};
const agent = async (paths: ZkPaths, inst: MariaDBInstance) => {
  const d = await zk.getOrNull(paths.agent(inst.node));
  return d === null ? null : { record: decodeRecord(agentSchema, d.data, 'agent'), stat: d.stat };
};

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** Waits until the client has finished `n` more checks (a condition, not a sleep). */
async function checksPass(c: ClientHandle, n: number): Promise<void> {
  const total = () => Object.values(c.snapshot().counters.checks).reduce((a, b) => a + b, 0);
  const target = total() + n;
  await waitFor(() => total() >= target, { timeoutMs: 5000, what: `${n} more checks` });
}

/** Adds the client's state to a failure, so a failed wait says what the agent saw. */
async function explained<T>(c: ClientHandle, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    const s = c.snapshot();
    const state = { health: s.health.kind, zkConnected: s.zkConnected, group: s.group, counters: s.counters };
    throw new Error(`${(err as Error).message}; client state: ${JSON.stringify(state)}`);
  }
}

const clients: ClientHandle[] = [];
async function client(
  paths: ZkPaths,
  inst: MariaDBInstance,
  opts: { socket?: boolean } = {},
): Promise<ClientHandle> {
  const c = await startClient(configFor(paths.root, inst, opts), { logger: log });
  clients.push(c);
  return c;
}
async function stopClients(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
}

before(async () => {
  [zkc, db] = await Promise.all([
    startZooKeeper({ tickTime: 500, minSessionTimeout: 1000 }),
    startMariaDB({ count: 3, replication: true }),
  ]);
  zk = await Zk.connect({ hosts: zkc.connectString, sessionTimeoutMs: 10000, logger: log });
});

after(async () => {
  await stopClients();
  await zk?.close();
  await Promise.allSettled([zkc?.close(), db?.close()]);
});

describe('heartbeat client', () => {
  it('publishes online/ and agent/, answers /master and /replica, and rewrites online/ only on a meaningful change', async (t) => {
    t.after(stopClients);
    const paths = await freshGroup();
    const [m, r] = [db.instances[0]!, db.instances[1]!];
    const cm = await client(paths, m);
    const cr = await client(paths, r);

    const om = await waitFor(() => online(paths, m), { timeoutMs: 5000, what: 'online/ of the master' });
    assert.equal(om.record.role, 'master');
    assert.equal(om.record.readOnly, false);
    const or = await waitFor(() => online(paths, r), { timeoutMs: 5000, what: 'online/ of the replica' });
    assert.equal(or.record.role, 'replica');
    assert.equal(or.record.readOnly, true);
    assert.equal(or.record.ioRunning, true);
    assert.equal(or.record.masterNode, m.node);
    const am = await agent(paths, m);
    assert.ok(am !== null, 'agent/ of the master exists');
    assert.equal(am.record.httpPort, cm.httpPort);
    assert.equal(am.record.pid, process.pid);
    assert.equal(am.record.mysqldDown, undefined);
    assert.equal(
      am.stat.ephemeralOwner,
      om.stat.ephemeralOwner,
      'both ephemerals belong to the agent session',
    );

    await waitFor(async () => (await get(cm.httpPort, '/master')).status === 200, {
      timeoutMs: 5000,
      what: 'GET /master 200 on the master',
    });
    assert.equal((await get(cr.httpPort, '/master')).status, 503);
    assert.equal((await get(cr.httpPort, '/replica')).status, 200);
    assert.equal((await get(cm.httpPort, '/replica')).status, 503);
    const metrics = await get(cr.httpPort, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(
      metrics.body,
      new RegExp(`^zkmha_client_mysqld_up\\{node="${r.node}",group="${GROUP}"\\} 1$`, 'm'),
    );
    assert.equal((await get(cr.httpPort, '/nothing')).status, 404);

    // Writes move the GTIDs, not what the server acts on: online/ keeps its version.
    const w = await m.connect('app');
    try {
      await w.exec('CREATE TABLE IF NOT EXISTS hb (id INT PRIMARY KEY AUTO_INCREMENT)');
      for (let i = 0; i < 5; i++) await w.exec('INSERT INTO hb VALUES ()');
    } finally {
      await w.close();
    }
    await db.waitReplicated();
    await checksPass(cr, 3);
    assert.equal((await online(paths, r))!.stat.version, or.stat.version, 'no rewrite for GTID movement');

    // The IO thread stops: online/ is rewritten and /replica turns 503; restarted: back.
    await r.query('STOP SLAVE IO_THREAD');
    try {
      await waitFor(async () => (await online(paths, r))?.record.ioRunning === false, {
        timeoutMs: 5000,
        what: 'online/ with ioRunning false',
      });
      assert.equal((await get(cr.httpPort, '/replica')).status, 503);
    } finally {
      await r.query('START SLAVE IO_THREAD');
    }
    await waitFor(async () => (await online(paths, r))?.record.ioRunning === true, {
      timeoutMs: 5000,
      what: 'online/ with ioRunning true',
    });
    await waitFor(async () => (await get(cr.httpPort, '/replica')).status === 200, {
      timeoutMs: 5000,
      what: 'GET /replica 200 again',
    });

    // Another node becomes master in master/<group>: /master on the old one answers 503, and
    // being writable while not the master, it is fenced by its agent.
    await zk.set(
      paths.master(GROUP),
      encodeRecord(
        masterSchema,
        { v: 1, node: r.node, epoch: 2, since: Date.now(), reason: 'test' },
        'master',
      ),
    );
    try {
      await waitFor(async () => (await get(cm.httpPort, '/master')).status === 503, {
        timeoutMs: 5000,
        what: 'GET /master 503 after master/ moved',
      });
      await waitFor(() => cm.snapshot().counters.strayFences === 1, {
        timeoutMs: 5000,
        what: 'the old master fenced by its agent',
      });
    } finally {
      await stopClients();
      await m.query('SET GLOBAL read_only = OFF');
    }
  });

  it('deletes online/ at once when mysqld is killed (agent/ says mysqldDown), republishes after restart, and holds back while rejoin/ exists (over the Unix socket)', async (t) => {
    t.after(stopClients);
    const paths = await freshGroup();
    const r = db.instances[2]!;
    const c = await client(paths, r, { socket: true });
    await waitFor(() => online(paths, r), { timeoutMs: 5000, what: 'online/' });
    const watched = follow(paths.online(r.node));
    t.after(() => watched.cancel());

    const killedAt = Date.now();
    await r.kill();
    await waitFor(() => watched.current === null, { timeoutMs: 3000, what: 'watch sees online/ deleted' });
    log.info({ ms: Date.now() - killedAt }, 'kill → online/ gone');
    const a = await agent(paths, r);
    assert.equal(a?.record.mysqldDown, true, 'agent/ stays and says mysqld is down');
    assert.equal(c.snapshot().health.kind, 'down');

    await r.start({ readOnly: true });
    await r.query('START SLAVE');
    const back = await waitFor(() => online(paths, r), { timeoutMs: 8000, what: 'online/ after restart' });
    assert.equal(back.record.role, 'replica');
    await waitFor(async () => (await agent(paths, r))?.record.mysqldDown === undefined, {
      timeoutMs: 3000,
      what: 'agent/ without mysqldDown',
    });

    // Down again, and a failover left rejoin/<node>: healthy mysqld alone does not bring it back.
    await r.kill();
    await waitFor(async () => (await online(paths, r)) === null, {
      timeoutMs: 3000,
      what: 'online/ gone again',
    });
    const rejoin = encodeRecord(
      rejoinSchema,
      {
        v: 1,
        group: GROUP,
        newMaster: db.instances[1]!.node,
        epoch: 2,
        promotedAt: Date.now(),
        gtidAtPromotion: '0-1-1',
      },
      'rejoin',
    );
    await zk.create(paths.rejoin(r.node), rejoin);
    await r.start({ readOnly: true });
    await waitFor(() => c.snapshot().health.kind === 'up', {
      timeoutMs: 8000,
      what: 'client sees mysqld healthy',
    });
    await checksPass(c, 4);
    assert.equal(await online(paths, r), null, 'online/ held back while rejoin/ exists');
    assert.equal(c.snapshot().rejoinPending, true);
    await zk.delete(paths.rejoin(r.node));
    await waitFor(() => online(paths, r), { timeoutMs: 3000, what: 'online/ after rejoin/ removed' });
    await r.query('START SLAVE');
  });

  it('removes online/ after failAfter timeouts of a hung mysqld (SIGSTOP), without reporting it down in agent/, and republishes after SIGCONT', async (t) => {
    t.after(stopClients);
    const paths = await freshGroup();
    const r = db.instances[2]!;
    const c = await client(paths, r);
    await waitFor(() => online(paths, r), { timeoutMs: 5000, what: 'online/' });
    r.pause();
    try {
      await waitFor(() => c.snapshot().health.kind === 'suspect', {
        timeoutMs: 3000,
        what: 'first timeout counted',
      });
      assert.ok((await online(paths, r)) !== null, 'one timeout does not remove online/');
      await waitFor(async () => (await online(paths, r)) === null, {
        timeoutMs: 5000,
        what: 'online/ removed',
      });
      const h = c.snapshot().health;
      assert.equal(h.kind === 'down' ? h.reason : h.kind, 'timeouts');
      assert.ok(c.snapshot().counters.checks.timeout >= 3, 'at least failAfter timeouts were counted');
      // A hung mysqld is not known to be dead: agent/ stays without mysqldDown, so the server
      // probes it itself instead of failing over on the agent's word (design §5.3).
      const a = await agent(paths, r);
      assert.ok(a !== null, 'agent/ stays');
      assert.equal(a.record.mysqldDown, undefined);
    } finally {
      r.resume();
    }
    await waitFor(() => online(paths, r), { timeoutMs: 5000, what: 'online/ back after SIGCONT' });
  });

  it('self-fencing: ZooKeeper lost with every replica attached → failsafe; a replica detaches → read_only=ON and app connections killed', async (t) => {
    t.after(stopClients);
    const paths = await freshGroup();
    const [m, r1] = [db.instances[0]!, db.instances[1]!];
    const cm = await client(paths, m);
    await waitFor(() => online(paths, m), { timeoutMs: 5000, what: 'online/ of the master' });
    await waitFor(() => cm.snapshot().group === GROUP && cm.snapshot().master !== null, {
      timeoutMs: 3000,
      what: 'group known',
    });
    const app = await m.connect('app');
    let appLost = false;
    app.onLost(() => (appLost = true));
    const member = zkc.members[0]!;
    member.pause();
    try {
      await explained(
        cm,
        waitFor(() => cm.snapshot().counters.failsafeHolds >= 2, {
          timeoutMs: 5000,
          what: 'two failsafe decisions',
        }),
      );
      assert.equal(cm.snapshot().counters.selfFences, 0);
      const [ro] = await m.query('SELECT @@read_only AS ro');
      assert.equal(Number(ro!.ro), 0, 'master stays writable while every replica is attached');
      await app.query('SELECT 1');
      assert.equal(appLost, false);

      // What a promotion does to a replica: replication stops. The master must fence now.
      await r1.query('STOP SLAVE');
      await explained(
        cm,
        waitFor(() => cm.snapshot().counters.selfFences >= 1, { timeoutMs: 5000, what: 'self-fence' }),
      );
      const [ro2] = await m.query('SELECT @@read_only AS ro');
      assert.equal(Number(ro2!.ro), 1, 'read_only=ON');
      await waitFor(() => appLost, { timeoutMs: 3000, what: 'app connection killed' });
      await assert.rejects(app.query('SELECT 1'));
    } finally {
      member.resume();
      await waitFor(() => zk.connected, { timeoutMs: 15000, what: "the test's own session reconnected" });
      await r1.query('START SLAVE');
      await m.query('SET GLOBAL read_only = OFF');
      app.destroy();
    }
    await zkc.ready();
  });

  it('self-fencing: ZooKeeper stopped and no replica attached → fenced', async (t) => {
    t.after(stopClients);
    const paths = await freshGroup();
    const [m, r1, r2] = [db.instances[0]!, db.instances[1]!, db.instances[2]!];
    const cm = await client(paths, m);
    await waitFor(() => online(paths, m), { timeoutMs: 5000, what: 'online/ of the master' });
    await waitFor(() => cm.snapshot().group === GROUP, { timeoutMs: 3000, what: 'group known' });
    await Promise.all([r1.query('STOP SLAVE'), r2.query('STOP SLAVE')]);
    const app = await m.connect('app');
    let appLost = false;
    app.onLost(() => (appLost = true));
    const member = zkc.members[0]!;
    const stoppedAt = Date.now();
    await member.stop();
    try {
      // The admin connection of the test is killed by the fence too: waitFor retries the query.
      await explained(
        cm,
        waitFor(async () => Number((await m.query('SELECT @@read_only AS ro'))[0]!.ro) === 1, {
          timeoutMs: 5000,
          intervalMs: 10,
          what: 'read_only=ON',
        }),
      );
      const fencedAfterMs = Date.now() - stoppedAt;
      log.info({ fencedAfterMs }, 'ZooKeeper stopped → master fenced');
      // Design §4: the master stops taking writes before its session can expire (and a replica be promoted).
      assert.ok(
        fencedAfterMs < SESSION_MS,
        `fenced ${fencedAfterMs} ms after ZooKeeper stopped, within the ${SESSION_MS} ms session timeout`,
      );
      await waitFor(() => cm.snapshot().counters.selfFences === 1, {
        timeoutMs: 3000,
        what: 'the fence counted once',
      });
      assert.equal(cm.snapshot().counters.failsafeHolds, 0);
      await waitFor(() => appLost, { timeoutMs: 3000, what: 'app connection killed' });
    } finally {
      await member.start();
      await waitFor(() => zk.connected, { timeoutMs: 15000, what: "the test's own session reconnected" });
      await Promise.all([r1.query('START SLAVE'), r2.query('START SLAVE')]);
      await m.query('SET GLOBAL read_only = OFF');
      app.destroy();
    }
  });

  it('a replica made writable by hand (master/ names another node) is fenced within a few checks; the master is not', async (t) => {
    const paths = await freshGroup();
    const [m, r] = [db.instances[0]!, db.instances[1]!];
    const cm = await client(paths, m);
    const cr = await client(paths, r);
    try {
      await waitFor(async () => (await online(paths, m)) !== null && (await online(paths, r)) !== null, {
        timeoutMs: 5000,
        what: 'online/ of master and replica',
      });
      await waitFor(() => cr.snapshot().master !== null, { timeoutMs: 3000, what: 'replica knows master/' });
      const app = await r.connect('app');
      t.after(() => app.destroy());
      let appLost = false;
      app.onLost(() => (appLost = true));

      const madeWritableAt = Date.now();
      await r.query('SET GLOBAL read_only = OFF');
      await explained(
        cr,
        waitFor(async () => Number((await r.query('SELECT @@read_only AS ro'))[0]!.ro) === 1, {
          timeoutMs: CHECK_MS * 20,
          what: 'the replica turned read-only again by its agent',
        }),
      );
      log.info({ ms: Date.now() - madeWritableAt }, 'replica made writable → fenced by its agent');
      // read_only flips first; the agent counts the fence once its connection kills are done too.
      await waitFor(() => cr.snapshot().counters.strayFences >= 1, {
        timeoutMs: 3000,
        what: 'the fence counted',
      });
      assert.equal(cr.snapshot().counters.strayFences, 1);
      await waitFor(() => appLost, { timeoutMs: 3000, what: 'app connection on the replica killed' });
      await waitFor(async () => (await online(paths, r))?.record.readOnly === true, {
        timeoutMs: 3000,
        what: 'online/ of the replica read-only again',
      });
      const metrics = await get(cr.httpPort, '/metrics');
      assert.match(metrics.body, /^zkmha_client_stray_fence_total\{[^}]*\} 1$/m);

      // The real master stays writable throughout: this rule never fences it.
      await checksPass(cm, 3);
      const [ro] = await m.query('SELECT @@read_only AS ro');
      assert.equal(Number(ro!.ro), 0, 'the master stays writable');
      assert.equal(cm.snapshot().counters.strayFences, 0);
      assert.equal(cm.snapshot().counters.selfFences, 0);
    } finally {
      await stopClients();
      await r.query('SET GLOBAL read_only = ON');
    }
  });

  it('a promotion under way (task/ names the candidate) is not fenced; once master/ moves, the old master back writable with rejoin/ is', async () => {
    const paths = await freshGroup();
    const [m, r] = [db.instances[0]!, db.instances[1]!];
    const cm = await client(paths, m);
    const cr = await client(paths, r);
    try {
      await waitFor(async () => (await online(paths, m)) !== null && (await online(paths, r)) !== null, {
        timeoutMs: 5000,
        what: 'online/ of master and replica',
      });
      // A failover that could not reach the old master (hung: not fenced in MySQL) promotes r: the
      // task names r before r becomes writable, and master/ still names m until the commit.
      const taskPath = paths.task(GROUP);
      await zk.create(
        taskPath,
        encodeRecord(
          taskSchema,
          {
            v: 1,
            id: 'test-failover',
            kind: 'failover',
            step: 'promote',
            oldMaster: m.node,
            candidate: r.node,
            startedAt: Date.now(),
            worker: 'test',
            epoch: 2,
            detail: {},
          },
          taskPath,
        ),
      );
      await r.query('SET GLOBAL read_only = OFF');
      await waitFor(() => cr.snapshot().strayWritable, {
        timeoutMs: 3000,
        what: 'candidate agent sees itself writable, not yet the master',
      });
      await checksPass(cr, 4);
      assert.equal(Number((await r.query('SELECT @@read_only AS ro'))[0]!.ro), 0, 'candidate left writable');
      assert.equal(cr.snapshot().counters.strayFences, 0);

      // The commit: master/ names r, the task goes, rejoin/<m> is created — in one multi.
      const cur = await zk.get(paths.master(GROUP));
      await zk.multi([
        {
          op: 'set',
          path: paths.master(GROUP),
          data: encodeRecord(
            masterSchema,
            { v: 1, node: r.node, epoch: 2, since: Date.now(), reason: 'failover' },
            'master',
          ),
          version: cur.stat.version,
        },
        { op: 'delete', path: taskPath, version: -1 },
        {
          op: 'create',
          path: paths.rejoin(m.node),
          data: encodeRecord(
            rejoinSchema,
            {
              v: 1,
              group: GROUP,
              newMaster: r.node,
              epoch: 2,
              promotedAt: Date.now(),
              gtidAtPromotion: '0-1-1',
            },
            'rejoin',
          ),
        },
      ]);
      // The old master (still writable: nothing could fence it) is fenced by its own agent.
      await explained(
        cm,
        waitFor(async () => Number((await m.query('SELECT @@read_only AS ro'))[0]!.ro) === 1, {
          timeoutMs: CHECK_MS * 20,
          what: 'old master turned read-only by its agent',
        }),
      );
      await waitFor(() => cm.snapshot().counters.strayFences >= 1, {
        timeoutMs: 3000,
        what: 'the fence counted',
      });
      assert.equal(cm.snapshot().counters.strayFences, 1);
      // The new master is the legitimate one: never fenced.
      await waitFor(() => !cr.snapshot().strayWritable, { timeoutMs: 3000, what: 'new master legitimate' });
      await checksPass(cr, 3);
      assert.equal(Number((await r.query('SELECT @@read_only AS ro'))[0]!.ro), 0, 'new master writable');
      assert.equal(cr.snapshot().counters.strayFences, 0);
    } finally {
      await stopClients();
      await r.query('SET GLOBAL read_only = ON');
      await m.query('SET GLOBAL read_only = OFF');
    }
  });

  it('republishes online/ and agent/ in a new session after its session expired (ZooKeeper paused beyond the session timeout)', async (t) => {
    t.after(stopClients);
    const paths = await freshGroup();
    const r = db.instances[1]!;
    const c = await client(paths, r);
    const before = await waitFor(() => online(paths, r), { timeoutMs: 5000, what: 'online/' });
    const member = zkc.members[0]!;
    member.pause();
    try {
      // Silence for a whole session timeout: the agent gives the session up (the ensemble expires it too).
      await waitFor(() => !c.snapshot().zkConnected, { timeoutMs: 3000, what: 'client disconnected' });
      await waitFor(() => c.snapshot().counters.expiries >= 1, {
        timeoutMs: SESSION_MS * 3,
        what: 'session given up',
      });
    } finally {
      member.resume();
    }
    await zkc.ready();
    const after = await waitFor(
      async () => {
        const o = await online(paths, r);
        return o !== null && o.stat.ephemeralOwner !== before.stat.ephemeralOwner ? o : null;
      },
      { timeoutMs: 8000, what: 'online/ republished by a new session' },
    );
    const a = await agent(paths, r);
    assert.equal(
      a?.stat.ephemeralOwner,
      after.stat.ephemeralOwner,
      'agent/ republished in the same new session',
    );
    assert.ok(c.snapshot().counters.sessions >= 2, 'a second session was established');
  });

  it('runs as `mha client --config F`: publishes, exits 0 on SIGTERM with its ephemerals gone; a bad config exits 2', async (t) => {
    const paths = await freshGroup();
    const r = db.instances[1]!;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-client-cli-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const pw = path.join(dir, 'mysql.pass');
    fs.writeFileSync(pw, TEST_CREDENTIALS.admin.password, { mode: 0o600 });
    const cfgFile = path.join(dir, 'mha.yaml');
    const yaml = [
      'zookeeper:',
      `  hosts: "${zkc.connectString}"`,
      `  root: ${paths.root}`,
      `  sessionTimeoutMs: ${SESSION_MS}`,
      'mysql:',
      `  user: ${TEST_CREDENTIALS.admin.user}`,
      `  passwordFile: ${pw}`,
      'client:',
      `  node: "${r.node}"`,
      `  binlogDir: ${r.binlogDir}`,
      `  dataDir: ${dir}`,
      '  httpPort: 0',
      `  checkIntervalMs: ${CHECK_MS}`,
      'log:',
      '  level: warn',
    ];
    fs.writeFileSync(cfgFile, yaml.join('\n') + '\n', { mode: 0o600 });
    const bin = path.join(__dirname, '..', '..', 'bin', 'mha.js');
    const run = (file: string) => {
      const p = spawn(process.execPath, [bin, 'client', '--config', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      track(p);
      let stderr = '';
      p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      p.stdout!.resume();
      const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
      return { p, exited, stderr: () => stderr };
    };

    const c = run(cfgFile);
    t.after(() => c.p.kill('SIGKILL'));
    await waitFor(() => online(paths, r), { timeoutMs: 8000, what: 'online/ from the child process' });
    const a = await waitFor(() => agent(paths, r), {
      timeoutMs: 3000,
      what: 'agent/ from the child process',
    });
    assert.equal(a.record.pid, c.p.pid);
    assert.ok((await get(a.record.httpPort, '/replica')).status === 200, 'the reported HTTP port answers');
    c.p.kill('SIGTERM');
    assert.equal(await c.exited, 0, `exit 0 on SIGTERM; stderr: ${c.stderr()}`);
    assert.equal(await online(paths, r), null, 'online/ gone with the closed session');
    assert.equal(await agent(paths, r), null, 'agent/ gone with the closed session');

    const badFile = path.join(dir, 'bad.yaml');
    fs.writeFileSync(badFile, yaml.join('\n').replace(`node: "${r.node}"`, 'node: "not a node"') + '\n', {
      mode: 0o600,
    });
    const bad = run(badFile);
    assert.equal(await bad.exited, 2);
    assert.match(bad.stderr(), /^mha: config: .*client\.node must be host:port\n$/);
  });
});
