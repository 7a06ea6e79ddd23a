import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { startClient, type ClientHandle } from '../../client/main';
import { Secret, type Config } from '../../core/config';
import { galera } from '../../core/mysql';
import {
  decodeRecord,
  encodeRecord,
  metaGroupSchema,
  metaHostSchema,
  onlineSchema,
  type OnlineRecord,
} from '../../core/records';
import { Zk } from '../../core/zk/client';
import { ZkPaths } from '../../core/zk/paths';
import { startGalera, type GaleraCluster, type GaleraNode } from '../env/galera';
import { TEST_CREDENTIALS } from '../env/mariadb';
import { freePorts } from '../env/ports';
import { waitFor } from '../env/wait';
import { startZooKeeper, testLogger, type ZkCluster } from '../env/zookeeper';

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
    await zk.create(
      paths.metaGroup(GROUP),
      encodeRecord(
        metaGroupSchema,
        {
          v: 1,
          name: GROUP,
          flavor: 'galera',
          writePort: 1,
          readPort: 2,
          members: cluster.nodes.map((n) => n.node),
          settings: {},
        },
        paths.metaGroup(GROUP),
      ),
    );
    for (const n of cluster.nodes)
      await zk.create(
        paths.metaHost(n.node),
        encodeRecord(
          metaHostSchema,
          { v: 1, group: GROUP, host: n.host, port: n.port, priority: 1 },
          paths.metaHost(n.node),
        ),
      );
    assert.ok(n0 !== undefined);
    for (const n of cluster.nodes) agents.push(await startClient(configFor(n), { logger: log }));
  });

  after(async () => {
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

  it('wsrep_notify_cmd makes the agents re-check at once: a killed node leaves the others’ view', async (t) => {
    const [n0, n1, n2] = cluster.nodes as [GaleraNode, GaleraNode, GaleraNode];
    const before = agents[0]!.snapshot().counters.wsrepNotifies ?? 0;
    const t0 = Date.now();
    await n2.kill();
    await waitFor(async () => (await online(n0))?.galera?.clusterSize === 2, {
      timeoutMs: 20000,
      what: `online/${n0.node} to show a component of 2`,
    });
    t.diagnostic(`kill → online/ of a survivor shows size 2 after ${Date.now() - t0} ms`);
    assert.ok((agents[0]!.snapshot().counters.wsrepNotifies ?? 0) > before, 'notified by mariadbd');
    await waitFor(async () => (await online(n1))?.galera?.clusterSize === 2, {
      timeoutMs: 5000,
      what: `online/${n1.node} to show a component of 2`,
    });
    assert.ok(Date.now() - t0 < POLL_MS / 2, 'not the poll');
  });

  it('a node left alone goes non-Primary and online/ says so', async (t) => {
    const [n0, n1] = cluster.nodes as [GaleraNode, GaleraNode];
    const t0 = Date.now();
    await n1.kill();
    const rec = await waitFor(
      async () => {
        const r = await online(n0);
        return r === null || r.galera?.clusterStatus !== 'Primary' ? { r } : null;
      },
      { timeoutMs: 20000, what: `online/${n0.node} to leave Primary` },
    );
    t.diagnostic(`second kill → survivor non-Primary in online/ after ${Date.now() - t0} ms`);
    assert.equal(rec.r?.galera?.clusterStatus, 'non-Primary');
    assert.equal(rec.r?.galera?.clusterSize, 1);
  });
});
