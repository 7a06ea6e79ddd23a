import * as path from 'node:path';
import { loadConfig, PACKAGE_ROOT } from '../core/config';
import { ZkmhaError } from '../core/errors';
import { createLogger } from '../core/log';
import { isHost, parsePort } from '../core/names';
import { stopOnSignal } from '../core/signals';
import { Zk } from '../core/zk/client';
import { ZkPaths } from '../core/zk/paths';
import { StatusHub } from './hub';
import { startWebServer } from './server';

/**
 * `mha web --config F [--listen host:port]`: the live status page and its JSON API, read-only, on
 * web.host:web.port (default 127.0.0.1:8090). Its own process, not part of `mha server`: a page
 * kept open by many people must not share an event loop (or a crash) with the failover path, it
 * needs no lock or server id, and it can run where the operators are.
 */
export const STATIC_DIR = path.join(PACKAGE_ROOT, 'web', 'static');

export function parseListen(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const host = i < 0 ? '' : s.slice(0, i);
  if (i < 0 || !isHost(host))
    throw new ZkmhaError('BAD_NAME', `invalid --listen '${s}' (expected host:port, e.g. 127.0.0.1:8090)`);
  return { host, port: parsePort(s.slice(i + 1), '--listen port') };
}

export async function runWeb(configPath: string | undefined, listen?: string): Promise<void> {
  const cfg = loadConfig(configPath);
  const web = cfg.web ?? { host: '127.0.0.1', port: 8090, mysql: true };
  const at = listen !== undefined ? parseListen(listen) : { host: web.host, port: web.port };
  const log = createLogger({ level: cfg.log.level, name: 'web' });
  const zk = await Zk.connect({
    hosts: cfg.zookeeper.hosts,
    sessionTimeoutMs: cfg.zookeeper.sessionTimeoutMs,
    ...(cfg.zookeeper.auth ? { auth: cfg.zookeeper.auth } : {}),
    aclRoot: cfg.zookeeper.root,
    logger: log,
  });
  const paths = new ZkPaths(cfg.zookeeper.root);
  const source = { zk, paths, cfg: { mysql: cfg.mysql } };
  const hub = new StatusHub({ ...source, readMysql: web.mysql, log });
  let server;
  try {
    // Listen at once; the overview fills in as the groups are read (1,000 take a few seconds).
    void hub.start().then(() => log.info({ groups: hub.summaries().length }, 'web: every group read'));
    server = await startWebServer(
      { hub, source, readMysql: web.mysql, log, staticDir: STATIC_DIR },
      at.host,
      at.port,
    );
  } catch (err) {
    await hub.stop();
    await zk.close();
    throw err;
  }
  log.info({ url: server.url }, `web: serving ${server.url}`);
  const s = server;
  await stopOnSignal(log, 'web: stopping', async () => {
    await s.close();
    await hub.stop();
    await zk.close();
  });
}
