import { loadConfig, type Config } from '../core/config';
import { createLogger, type Logger } from '../core/log';
import { Zk } from '../core/zk/client';
import { ZkPaths } from '../core/zk/paths';

/** What every admin command works with: config, a ZooKeeper session, the layout, a logger. */
export interface CliContext {
  readonly cfg: Config;
  readonly zk: Zk;
  readonly paths: ZkPaths;
  readonly log: Logger;
}

/** Loads config, connects to ZooKeeper, runs `fn`, and always closes the session. */
export async function withContext<T>(
  configFile: string | undefined,
  fn: (ctx: CliContext) => Promise<T>,
): Promise<T> {
  const cfg = loadConfig(configFile);
  // Commands print their results on stdout; logs go to stderr, quiet unless asked for.
  const log = createLogger({ level: process.env.MHA_LOG_LEVEL ?? 'warn', pretty: false }).child({
    role: 'cli',
  });
  const zk = await Zk.connect({
    hosts: cfg.zookeeper.hosts,
    sessionTimeoutMs: cfg.zookeeper.sessionTimeoutMs,
    ...(cfg.zookeeper.auth ? { auth: cfg.zookeeper.auth } : {}),
    aclRoot: cfg.zookeeper.root,
    logger: log,
  });
  try {
    return await fn({ cfg, zk, paths: new ZkPaths(cfg.zookeeper.root), log });
  } finally {
    await zk.close();
  }
}
