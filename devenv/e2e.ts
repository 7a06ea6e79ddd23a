import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeRecord, metaRouterSchema } from '../core/records';
import { startCluster, type Cluster, type ClusterOptions } from './cluster';
import { spawnMha, stopChild } from './cli';
import {
  haproxyDir,
  removeHaproxyDir,
  routerSection,
  stopHaproxyAt,
  trackRouterHaproxy,
  type HaproxyPaths,
} from './haproxy';
import { startHaproxyWriter, startHaproxyReader, type HaproxyReader, type HaproxyWriter } from './traffic';
import { waitFor } from './wait';

/**
 * The sandbox's topology for end-to-end tests and the e2e benchmark: the scenario harness
 * (ZooKeeper, three MariaDB with semi-sync, the group's records, three `mha client` and two
 * `mha server` child processes) plus one `mha router` child process that starts and drives its
 * own HAProxy, so applications reach the group only through HAProxy's write and read ports.
 */
export interface E2EWorld {
  readonly c: Cluster;
  readonly hp: HaproxyPaths;
  readonly writePort: number;
  readonly readPort: number;
  /** A config file for `mha <command>` against this world. */
  readonly cliConfig: string;
  readonly routerLog: string;
  /** An application writer on the write port / reader on the read port (stopped by close()). */
  writer(): HaproxyWriter;
  reader(intervalMs?: number): HaproxyReader;
  close(): Promise<void>;
}

export async function startE2E(opts: ClusterOptions = {}): Promise<E2EWorld> {
  const c = await startCluster({ semiSync: true, logLevel: 'info', ...opts });
  let hp: HaproxyPaths | null = null;
  let router: ChildProcess | null = null;
  const traffic: Array<{ stop(): Promise<void> }> = [];
  const close = async (): Promise<void> => {
    await Promise.all(traffic.map((t) => t.stop().catch(() => undefined)));
    if (router !== null) await stopChild(router, 'SIGKILL');
    if (hp !== null) {
      await stopHaproxyAt(hp).catch(() => undefined);
      removeHaproxyDir(hp);
    }
    await c.close();
  };
  try {
    const view = await c.view();
    const meta = view.meta;
    if (meta === null) throw new Error('e2e: no meta_group record');
    await c.startClients();
    await c.startServer('s1');
    await c.startServer('s2');

    const h = haproxyDir('zkmha-e2e-hap-');
    hp = h;
    const cfg = path.join(c.dir, 'router.yaml');
    fs.writeFileSync(
      cfg,
      [
        'zookeeper:',
        `  hosts: ${JSON.stringify(c.zk.connectString)}`,
        `  root: ${JSON.stringify(c.root)}`,
        `  sessionTimeoutMs: ${opts.sessionTimeoutMs ?? 2000}`,
        ...c.zkAuthLines('router'),
        ...routerSection('r1', h, { reconcileIntervalMs: 1000, agentChecks: true, httpPort: 0 }),
        'log:',
        `  level: ${opts.logLevel ?? 'info'}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const routerLog = path.join(c.dir, 'router.log');
    const spawnRouter = (): ChildProcess => spawnMha(['router', '--config', cfg], routerLog);
    router = opts.wrapSpawn ? opts.wrapSpawn('router-r1', spawnRouter) : spawnRouter();
    const r = router;
    await trackRouterHaproxy(h, 15_000);
    const master = await c.master();
    await waitFor(
      async () => {
        if (r.exitCode !== null)
          throw new Error(
            `mha router exited (${r.exitCode}): ${fs.readFileSync(routerLog, 'utf8').slice(-1500)}`,
          );
        const nd = await c.zkClient.getOrNull(c.paths.metaRouter('r1'));
        return (
          nd !== null &&
          decodeRecord(metaRouterSchema, nd.data, 'meta_router/r1').applied[c.group] === master.epoch
        );
      },
      { timeoutMs: 15_000, what: `router r1 applied epoch ${master.epoch}` },
    );
    const world: E2EWorld = {
      c,
      hp: h,
      writePort: meta.writePort,
      readPort: meta.readPort,
      cliConfig: c.writeConfig('cli', 'cli'),
      routerLog,
      writer() {
        const w = startHaproxyWriter(meta.writePort);
        traffic.push(w);
        return w;
      },
      reader(intervalMs) {
        const rd = startHaproxyReader(meta.readPort, intervalMs);
        traffic.push(rd);
        return rd;
      },
      close,
    };
    return world;
  } catch (err) {
    await close();
    throw err;
  }
}
