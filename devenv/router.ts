import * as mysql from 'mysql2/promise';
import { parseConfig, type RouterConfig, type ZookeeperConfig } from '../core/config';
import { createLogger, type Logger } from '../core/log';
import { encodeRecord, haproxySchema, metaGroupSchema, type HaproxyRecord } from '../core/records';
import { Zk } from '../core/zk/client';
import { ZkPaths } from '../core/zk/paths';
import { RouterAgent } from '../router/agent';
import {
  haproxyDir,
  removeHaproxyDir,
  routerSection,
  stopHaproxyAt,
  trackRouterHaproxy,
  type HaproxyPaths,
} from './haproxy';
import { startMariaDB, TEST_CREDENTIALS, type MariaDBCluster } from './mariadb';
import { freePorts } from './ports';
import { startZooKeeper, type ZkCluster } from './zookeeper';

/**
 * A world for router tests: one ZooKeeper, `nodes` independent MariaDB servers (each identified by
 * its port through `SELECT @@port`), a ZooKeeper session to write `meta_group/` and `haproxy/`, and
 * router agents run in this process, each with its own HAProxy directory. Everything is stopped by
 * `close()`, HAProxy included (the router leaves it running by design).
 *
 * ZKMHA_TEST_LOG=debug shows the routers' logs.
 */
export interface RouterWorld {
  readonly zk: ZkCluster;
  readonly zkc: Zk;
  readonly paths: ZkPaths;
  readonly zookeeper: ZookeeperConfig;
  readonly db: MariaDBCluster;
  /** Node names (`127.0.0.1:<port>`) in instance order. */
  readonly nodes: readonly string[];
  /** Registers a group (meta_group with fresh ports) and, if given, its route. */
  addGroup(
    name: string,
    route?: Omit<HaproxyRecord, 'v'>,
    members?: readonly string[],
  ): Promise<{ writePort: number; readPort: number }>;
  removeGroup(name: string): Promise<void>;
  setRoute(group: string, route: Omit<HaproxyRecord, 'v'>): Promise<void>;
  /** Writes raw bytes (for malformed records). */
  setRaw(path: string, data: Buffer): Promise<void>;
  ports(group: string): { writePort: number; readPort: number };
  routerConfig(id: string, hp: HaproxyPaths, extra?: Partial<RouterConfig>): RouterConfig;
  /** Starts a router agent with a new (or the given) HAProxy directory. */
  startRouter(
    id: string,
    hp?: HaproxyPaths,
    extra?: Partial<RouterConfig>,
  ): Promise<{ agent: RouterAgent; hp: HaproxyPaths }>;
  logger(name: string): Logger;
  close(): Promise<void>;
}

export async function startRouterWorld(opts: { readonly nodes?: number } = {}): Promise<RouterWorld> {
  const zk = await startZooKeeper();
  let db: MariaDBCluster | null = null;
  let zkc: Zk | null = null;
  const agents: RouterAgent[] = [];
  const dirs: HaproxyPaths[] = [];
  const groups = new Map<string, { writePort: number; readPort: number; members: readonly string[] }>();
  try {
    db = await startMariaDB({ count: opts.nodes ?? 3, replication: false });
    const level = process.env.ZKMHA_TEST_LOG ?? 'silent';
    const logger = (name: string): Logger => createLogger({ level, name, pretty: false });
    const zookeeper: ZookeeperConfig = { hosts: zk.connectString, root: '/mha', sessionTimeoutMs: 2000 };
    zkc = await Zk.connect({ hosts: zk.connectString, sessionTimeoutMs: 4000, logger: logger('test') });
    const paths = new ZkPaths('/mha');
    for (const d of paths.allDirs()) await zkc.mkdirp(d);
    const nodes = db.instances.map((i) => i.node);
    const c = zkc;
    const d = db;

    const world: RouterWorld = {
      zk,
      zkc: c,
      paths,
      zookeeper,
      db: d,
      nodes,
      async addGroup(name, route, members = nodes) {
        const [writePort, readPort] = (await freePorts(2)) as [number, number];
        const p = paths.metaGroup(name);
        await c.create(
          p,
          encodeRecord(
            metaGroupSchema,
            { v: 1, name, flavor: 'mariadb', writePort, readPort, members: [...members], settings: {} },
            p,
          ),
        );
        groups.set(name, { writePort, readPort, members });
        if (route) await world.setRoute(name, route);
        return { writePort, readPort };
      },
      async removeGroup(name) {
        await c.deleteIfExists(paths.haproxy(name));
        await c.deleteIfExists(paths.metaGroup(name));
        groups.delete(name);
      },
      async setRoute(group, route) {
        const p = paths.haproxy(group);
        const data = encodeRecord(haproxySchema, { v: 1, ...route }, p);
        if ((await c.exists(p)) === null) await c.create(p, data);
        else await c.set(p, data);
      },
      async setRaw(path, data) {
        if ((await c.exists(path)) === null) await c.create(path, data);
        else await c.set(path, data);
      },
      ports(group) {
        const g = groups.get(group);
        if (!g) throw new Error(`no group ${group}`);
        return { writePort: g.writePort, readPort: g.readPort };
      },
      routerConfig(id, hp, extra = {}) {
        const yaml = [
          `zookeeper: { hosts: "${zk.connectString}", root: /mha, sessionTimeoutMs: 2000 }`,
          ...routerSection(id, hp, { reconcileIntervalMs: 500 }),
        ].join('\n');
        return { ...parseConfig(yaml, `${hp.dir}/mha.yaml`).router!, ...extra };
      },
      async startRouter(id, hp = haproxyDir(), extra = {}) {
        if (!dirs.includes(hp)) dirs.push(hp);
        const agent = new RouterAgent({
          router: world.routerConfig(id, hp, extra),
          zookeeper,
          log: logger(`router:${id}`),
          host: `host-${id}`,
        });
        agents.push(agent);
        await agent.start();
        void trackRouterHaproxy(hp).catch(() => undefined);
        return { agent, hp };
      },
      logger,
      async close() {
        for (const a of agents) await a.stop().catch(() => undefined);
        for (const hp of dirs) {
          await stopHaproxyAt(hp).catch(() => undefined);
          removeHaproxyDir(hp);
        }
        await c.close().catch(() => undefined);
        await d.close();
        await zk.close();
      },
    };
    return world;
  } catch (err) {
    await zkc?.close().catch(() => undefined);
    await db?.close().catch(() => undefined);
    await zk.close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// MariaDB through HAProxy

/** Connects through HAProxy as the application user. */
export function appConnect(
  port: number,
  connectTimeout = 2000,
  host = '127.0.0.1',
): Promise<mysql.Connection> {
  return mysql.createConnection({
    host,
    port,
    user: TEST_CREDENTIALS.app.user,
    password: TEST_CREDENTIALS.app.password,
    database: 'app',
    connectTimeout,
  });
}

/** Which MariaDB answers a new connection on this HAProxy port: its port, or the error code. */
export async function whoAnswers(port: number, host = '127.0.0.1'): Promise<number | string> {
  let conn: mysql.Connection | null = null;
  try {
    conn = await appConnect(port, 1000, host);
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@port AS p');
    return Number(rows[0]!.p);
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  } finally {
    await conn?.end().catch(() => undefined);
  }
}

export const portOf = (node: string): number => Number(node.slice(node.lastIndexOf(':') + 1));

/**
 * A client that loops short read queries on a new connection each time and counts failures —
 * what an application with a connection per request sees during router changes.
 */
export interface ReadLoop {
  readonly ok: number;
  readonly failed: number;
  readonly errors: readonly string[];
  /** Ports that answered, with counts. */
  readonly seen: ReadonlyMap<number, number>;
  /** Successful reads since `mark()`, per port. */
  seenSinceMark(): ReadonlyMap<number, number>;
  mark(): void;
  stop(): Promise<void>;
}

export function startReadLoop(port: number): ReadLoop {
  let stopped = false;
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  const seen = new Map<number, number>();
  let sinceMark = new Map<number, number>();
  const loop = (async () => {
    while (!stopped) {
      const r = await whoAnswers(port);
      if (typeof r === 'number') {
        ok++;
        seen.set(r, (seen.get(r) ?? 0) + 1);
        sinceMark.set(r, (sinceMark.get(r) ?? 0) + 1);
      } else {
        failed++;
        if (errors.length < 20) errors.push(r);
      }
    }
  })();
  return {
    get ok() {
      return ok;
    },
    get failed() {
      return failed;
    },
    errors,
    seen,
    seenSinceMark: () => sinceMark,
    mark() {
      sinceMark = new Map();
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
