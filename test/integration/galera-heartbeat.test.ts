import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { startClient, type ClientHandle } from '../../client/main';
import { startServer, type ServerHandle } from '../../server/main';
import { Secret, type Config } from '../../core/config';
import { galera } from '../../core/mysql';
import type { CliContext } from '../../cli/context';
import { drain, undrain } from '../../cli/drain';
import { runGaleraAdd } from '../../cli/galera-add';
import { addHost } from '../../cli/hosts';
import { setHa } from '../../cli/setha';
import { setMaster } from '../../cli/setmaster';
import { switchover } from '../../cli/switchover';
import {
  decodeRecord,
  metaGroupSchema,
  alertSchema,
  haproxySchema,
  historySchema,
  masterSchema,
  onlineSchema,
  type HaproxyRecord,
  type OnlineRecord,
} from '../../core/records';
import { Zk } from '../../core/zk/client';
import { ZkPaths } from '../../core/zk/paths';
import { startGalera, type GaleraCluster, type GaleraNode } from '../../devenv/galera';
import { TEST_CREDENTIALS } from '../../devenv/mariadb';
import { freePorts } from '../../devenv/ports';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, testLogger, type ZkCluster } from '../../devenv/zookeeper';

/**
 * The Galera flavor and the heartbeat of Galera nodes against a real 3-node Galera 4 cluster and
 * a real ZooKeeper. The agents' own poll is set to a minute, so every change of online/ seen here
 * within seconds came from wsrep_notify_cmd (`mha client notify`), not from the poll.
 */
const GROUP = 'gal';
const POLL_MS = 60_000;
const MHA = path.join(__dirname, '..', '..', 'bin', 'mha.js');

let zkc: ZkCluster;
let cluster: GaleraCluster;
let zk: Zk;
let agentPorts: number[];
const agents: ClientHandle[] = [];
let server: ServerHandle;
const paths = new ZkPaths('/galera');
const log = testLogger('galera-heartbeat');

function configFor(n: GaleraNode): Config {
  return {
    file: '(test)',
    zookeeper: { hosts: zkc.connectString, root: paths.root, sessionTimeoutMs: 4000 },
    mysql: {
      user: TEST_CREDENTIALS.admin.user,
      password: new Secret(TEST_CREDENTIALS.admin.password),
      replicationUser: TEST_CREDENTIALS.repl.user,
      replicationPassword: new Secret(TEST_CREDENTIALS.repl.password),
      connectTimeoutMs: 1000,
    },
    client: {
      node: n.node,
      binlogDir: n.datadir,
      dataDir: n.dir,
      httpPort: agentPorts[n.index]!,
      httpHost: '127.0.0.1',
      checkIntervalMs: POLL_MS,
      failAfter: 3,
    },
    log: { level: 'silent' },
  };
}

async function route(): Promise<HaproxyRecord | null> {
  const d = await zk.getOrNull(paths.haproxy(GROUP));
  return d === null ? null : decodeRecord(haproxySchema, d.data, paths.haproxy(GROUP));
}

async function online(n: GaleraNode): Promise<OnlineRecord | null> {
  const d = await zk.getOrNull(paths.online(n.node));
  return d === null ? null : decodeRecord(onlineSchema, d.data, paths.online(n.node));
}

describe('galera flavor and heartbeat (real Galera 4)', () => {
  before(async () => {
    agentPorts = await freePorts(3);
    zkc = await startZooKeeper();
    // mariadbd runs wsrep_notify_cmd itself (as mysql): our CLI, pointed at this node's agent.
    cluster = await startGalera({
      count: 3,
      extraArgs: (i) => [
        `--wsrep-notify-cmd=${process.execPath} ${MHA} client notify --agent 127.0.0.1:${agentPorts[i]!}`,
      ],
    });
    zk = await Zk.connect({ hosts: zkc.connectString, sessionTimeoutMs: 4000, logger: log });
    for (const d of paths.allDirs()) await zk.mkdirp(d);
    const [n0] = cluster.nodes;
    assert.ok(n0 !== undefined);
    // Registered as an operator does: `mha add --flavor galera` (one multi, nothing on MySQL).
    const ctx: CliContext = { cfg: configFor(n0), zk, paths, log };
    const nodes = cluster.nodes.map((n) => n.node);
    await assert.rejects(
      runGaleraAdd(ctx, { group: GROUP, nodes: nodes.slice(0, 2), writePort: 1, readPort: 2 }),
      /sees a component of 3 members but --nodes names 2/,
    );
    assert.equal(await zk.exists(paths.metaGroup(GROUP)), null, 'a refused add changes nothing');
    const added = await runGaleraAdd(ctx, { group: GROUP, nodes, writePort: 1, readPort: 2 });
    assert.equal(added.master, [...nodes].sort()[0]);
    const meta = decodeRecord(
      metaGroupSchema,
      (await zk.getOrNull(paths.metaGroup(GROUP)))!.data,
      paths.metaGroup(GROUP),
    );
    assert.deepEqual([meta.flavor, meta.members], ['galera', nodes]);
    for (const n of cluster.nodes) agents.push(await startClient(configFor(n), { logger: log }));
    const { client: _c, ...base } = configFor(cluster.nodes[0]!);
    server = await startServer(
      {
        ...base,
        server: {
          id: 's1',
          reconcileIntervalMs: 2000,
          readReturnAfterMs: 2000,
          readOnlyGraceMs: 1000,
          httpHost: '127.0.0.1',
        },
      },
      { logger: log },
    );
  });

  after(async () => {
    await server?.stop();
    await Promise.all(agents.map((a) => a.stop()));
    await zk?.close();
    await cluster?.close();
    await zkc?.close();
  });

  it('reads the wsrep state of a Synced Primary node', async () => {
    const n0 = cluster.nodes[0]!;
    const conn = await n0.connect();
    try {
      const s = await galera.readState(conn);
      const raw = await n0.wsrepStatus();
      assert.deepEqual(
        {
          status: s.galera?.clusterStatus,
          state: s.galera?.localState,
          comment: s.galera?.localStateComment,
          ready: s.galera?.ready,
          size: s.galera?.clusterSize,
          uuid: s.galera?.clusterStateUuid,
        },
        {
          status: 'Primary',
          state: 4,
          comment: 'Synced',
          ready: true,
          size: 3,
          uuid: raw.wsrep_cluster_state_uuid,
        },
      );
      assert.ok((s.galera?.lastCommitted ?? -1) >= 0, 'a committed seqno');
      assert.equal(s.readOnly, false, 'the mariadb part of the state is read too');
    } finally {
      await conn.close();
    }
  });

  it('publishes each node’s wsrep state in online/', async () => {
    const recs = await waitFor(
      async () => {
        const rs = await Promise.all(cluster.nodes.map(online));
        return rs.every((r) => r?.galera?.clusterSize === 3) ? rs : null;
      },
      { timeoutMs: 15000, what: 'online/ with galera state for every node' },
    );
    const uuid = (await cluster.nodes[0]!.wsrepStatus()).wsrep_cluster_state_uuid;
    for (const r of recs) {
      assert.equal(r?.galera?.clusterStatus, 'Primary');
      assert.equal(r?.galera?.localState, 4);
      assert.equal(r?.galera?.ready, true);
      assert.equal(r?.galera?.stateUuid, uuid);
    }
  });

  it('the worker routes writes to one Synced node and reads to the others', async () => {
    const r = await waitFor(async () => ((await route())?.read.length === 2 ? route() : null), {
      timeoutMs: 15000,
      what: `haproxy/${GROUP} with a writer and two readers`,
    });
    const nodes = cluster.nodes.map((n) => n.node);
    assert.ok(r.write !== null && nodes.includes(r.write));
    assert.deepEqual([...r.read].sort(), nodes.filter((n) => n !== r.write).sort());
    const m = decodeRecord(
      masterSchema,
      (await zk.getOrNull(paths.master(GROUP)))!.data,
      paths.master(GROUP),
    );
    assert.equal(m.node, r.write);
    assert.equal(m.epoch, r.epoch);
  });

  it('mha drain of the writer hands writes to another Synced node first (epoch + 1); undrain returns it to reads', async () => {
    const ctx: CliContext = { cfg: configFor(cluster.nodes[0]!), zk, paths, log };
    const before = (await route())!;
    const writer = before.write!;
    const others = cluster.nodes.map((n) => n.node).filter((n) => n !== writer);

    const r = await drain(ctx, writer);
    assert.equal(r.changed, true);
    assert.ok(r.writer !== undefined && r.writer !== null && others.includes(r.writer), 'a new writer');
    assert.equal(r.epoch, before.epoch + 1);
    const after = (await route())!;
    assert.equal(after.write, r.writer);
    assert.equal(after.epoch, before.epoch + 1);
    assert.ok(!after.read.includes(writer), 'the drained node is out of reads');
    const m = decodeRecord(
      masterSchema,
      (await zk.getOrNull(paths.master(GROUP)))!.data,
      paths.master(GROUP),
    );
    assert.deepEqual([m.node, m.epoch], [r.writer, after.epoch]);
    const events = await zk.children(paths.historyDir(GROUP));
    const last = events.sort().at(-1)!;
    const h = decodeRecord(
      historySchema,
      (await zk.getOrNull(`${paths.historyDir(GROUP)}/${last}`))!.data,
      'history',
    );
    assert.deepEqual([h.kind, h.from, h.to, h.epoch], ['galera-writer', writer, r.writer, after.epoch]);

    // With the other two drained as well, nobody could take writes: the writer's drain is refused.
    const third = others.find((n) => n !== r.writer)!;
    assert.equal((await drain(ctx, third)).changed, true);
    await assert.rejects(drain(ctx, r.writer), /no other node can take writes/);
    assert.equal((await route())!.write, r.writer, 'refused: nothing changed');

    for (const n of [writer, third]) {
      const u = await undrain(ctx, n);
      assert.deepEqual([u.changed, u.inReadPool], [true, true]);
    }
    const back = (await route())!;
    assert.equal(back.write, r.writer, 'undrain does not move the writer back');
    assert.deepEqual([...back.read].sort(), [writer, third].sort());
    assert.equal(back.epoch, after.epoch);
  });

  it('replication-only commands refuse a Galera group by name and change nothing', async () => {
    const ctx: CliContext = { cfg: configFor(cluster.nodes[0]!), zk, paths, log };
    const before = await route();
    const node = cluster.nodes[1]!.node;
    const refusals: Array<[string, () => Promise<unknown>]> = [
      ['mha switchover', () => switchover(ctx, { group: GROUP, maxPauseMs: 2000 })],
      ['mha setmaster', () => setMaster(ctx, GROUP, node, false)],
      ['mha addhost', () => addHost(ctx, { group: GROUP, node: '127.0.0.1:1', priority: 1 })],
      ['mha setha', () => setHa(ctx, node)],
    ];
    for (const [command, run] of refusals)
      await assert.rejects(
        run,
        new RegExp(`'${GROUP}' is a Galera group: ${command} applies to replication groups only`),
      );
    assert.deepEqual(await route(), before);
  });

  it('the writer’s mysqld killed: wsrep_notify_cmd re-checks at once and the writer moves to a Synced node', async (t) => {
    const before = (await route())!;
    const writer = cluster.nodes.find((n) => n.node === before.write)!;
    const survivors = cluster.nodes.filter((n) => n !== writer);
    const notified = agents[survivors[0]!.index]!.snapshot().counters.wsrepNotifies ?? 0;
    const t0 = Date.now();
    await writer.kill();
    const moved = await waitFor(
      async () => {
        const r = await route();
        return r !== null && r.write !== before.write && r.write !== null ? r : null;
      },
      { timeoutMs: 20000, what: 'the writer to move' },
    );
    t.diagnostic(`writer kill → route moved after ${Date.now() - t0} ms`);
    assert.ok(survivors.some((n) => n.node === moved.write));
    assert.equal(moved.epoch, before.epoch + 1, 'a writer move bumps the epoch');
    assert.ok(!moved.read.includes(writer.node), 'the dead node is not read from');
    for (const n of survivors)
      await waitFor(async () => (await online(n))?.galera?.clusterSize === 2, {
        timeoutMs: 20000,
        what: `online/${n.node} to show a component of 2`,
      });
    t.diagnostic(`kill → survivors' online/ show size 2 after ${Date.now() - t0} ms`);
    assert.ok((agents[survivors[0]!.index]!.snapshot().counters.wsrepNotifies ?? 0) > notified, 'notified');
    assert.ok(Date.now() - t0 < POLL_MS / 2, 'not the poll');
    const events = await zk.childrenOrEmpty(paths.historyDir(GROUP));
    const hist = await Promise.all(
      events.map(async (e) => {
        const p = `${paths.historyDir(GROUP)}/${e}`;
        return decodeRecord(historySchema, (await zk.getOrNull(p))!.data, p);
      }),
    );
    assert.ok(
      hist.some((h) => h.kind === 'galera-writer' && h.from === writer.node && h.to === moved.write),
      'history records the move',
    );
    // Writes work on the new writer.
    const w = cluster.nodes.find((n) => n.node === moved.write)!;
    await w.query(`CREATE TABLE IF NOT EXISTS app.after_move (id INT PRIMARY KEY)`);
    await w.query(`INSERT INTO app.after_move VALUES (1)`);
  });

  it('a node left alone goes non-Primary: online/ says so and it is not routed', async (t) => {
    const [alone, other] = cluster.nodes.filter((n) => n.running) as [GaleraNode, GaleraNode];
    const t0 = Date.now();
    await other.kill();
    const rec = await waitFor(
      async () => {
        const r = await online(alone);
        return r === null || r.galera?.clusterStatus !== 'Primary' ? { r } : null;
      },
      { timeoutMs: 20000, what: `online/${alone.node} to leave Primary` },
    );
    t.diagnostic(`second kill → survivor non-Primary in online/ after ${Date.now() - t0} ms`);
    assert.equal(rec.r?.galera?.clusterStatus, 'non-Primary');
    assert.equal(rec.r?.galera?.clusterSize, 1);
    const r = await waitFor(async () => ((await route())?.write === null ? route() : null), {
      timeoutMs: 10000,
      what: 'no writer on a non-Primary component',
    });
    assert.deepEqual(r.read, []);
    const alert = await waitFor(() => zk.getOrNull(paths.watchDown(GROUP, 'galera-non-primary')), {
      timeoutMs: 5000,
      what: 'a galera-non-primary alert',
    });
    const a = decodeRecord(alertSchema, alert.data, 'alert');
    assert.equal(a.detail.reason, 'none-routable');
    assert.deepEqual(a.detail.excluded, {
      ...Object.fromEntries(cluster.nodes.filter((n) => n !== alone).map((n) => [n.node, 'no-heartbeat'])),
      [alone.node]: 'not-primary',
    });
  });
});
