import { loadConfig, requireSection, type Config } from '../core/config';
import { ZkmhaError } from '../core/errors';
import { createLogger, type Logger } from '../core/log';
import { stopOnSignal } from '../core/signals';
import { metricsRoute, startHttpListener, type HttpListener } from '../core/metrics';
import { Zk } from '../core/zk/client';
import { ZkPaths } from '../core/zk/paths';
import { FAILOVER_STEPS, type FailoverStep } from './failover';
import { createServerMetrics } from './metrics';
import { ServerWorker } from './worker';

export { ServerWorker } from './worker';

export interface ServerHandle {
  readonly worker: ServerWorker;
  readonly zk: Zk;
  /** The port `/metrics` is served on (ephemeral when configured as 0); null without server.httpPort. */
  readonly metricsPort: number | null;
  /** Stops watching, releases locks, deletes servers/<id>, closes MySQL and ZooKeeper. */
  stop(): Promise<void>;
}

export interface StartServerOptions {
  readonly logger?: Logger;
  /** Fault injection (tests): pause before a failover step; default from MHA_FAULT_PAUSE_BEFORE_STEP=step:ms. */
  readonly pauseBeforeStep?: { readonly step: FailoverStep; readonly ms: number };
}

/** Parses MHA_FAULT_PAUSE_BEFORE_STEP ("promote:5000"); a bad value is a config error. */
export function faultFromEnv(value: string | undefined): { step: FailoverStep; ms: number } | undefined {
  if (value === undefined || value === '') return undefined;
  const m = /^([a-z]+):(\d{1,7})$/.exec(value);
  if (m === null || !FAILOVER_STEPS.includes(m[1] as FailoverStep)) {
    throw new ZkmhaError(
      'BAD_CONFIG',
      `MHA_FAULT_PAUSE_BEFORE_STEP must be <step>:<ms> with step one of ${FAILOVER_STEPS.join(', ')}`,
    );
  }
  return { step: m[1] as FailoverStep, ms: Number(m[2]) };
}

/** Runs a server worker in this process (tests run it in-process or as `mha server`). */
export async function startServer(cfg: Config, opts: StartServerOptions = {}): Promise<ServerHandle> {
  const server = requireSection(cfg, 'server');
  const log = (opts.logger ?? createLogger({ level: cfg.log.level, name: 'zkmha-server' })).child({
    serverId: server.id,
  });
  const zk = await Zk.connect({
    hosts: cfg.zookeeper.hosts,
    sessionTimeoutMs: cfg.zookeeper.sessionTimeoutMs,
    ...(cfg.zookeeper.auth ? { auth: cfg.zookeeper.auth } : {}),
    aclRoot: cfg.zookeeper.root,
    logger: log,
  });
  const fault = opts.pauseBeforeStep ?? faultFromEnv(process.env.MHA_FAULT_PAUSE_BEFORE_STEP);
  const paths = new ZkPaths(cfg.zookeeper.root);
  const metrics = createServerMetrics(zk, paths);
  const worker = new ServerWorker({
    zk,
    paths,
    cfg,
    server,
    log,
    metrics,
    ...(fault ? { pauseBeforeStep: fault } : {}),
  });
  let http: HttpListener | null = null;
  try {
    if (server.httpPort !== undefined)
      http = await startHttpListener('server', server.httpHost, server.httpPort, {
        '/metrics': metricsRoute(metrics.registry),
      });
    if (http !== null) log.info({ metricsPort: http.port, host: server.httpHost }, 'serving /metrics');
    await worker.start();
  } catch (err) {
    await http?.close();
    await worker.stop().catch(() => undefined);
    await zk.close().catch(() => undefined);
    throw err;
  }
  let stopping: Promise<void> | null = null;
  return {
    worker,
    zk,
    metricsPort: http?.port ?? null,
    stop() {
      stopping ??= (async () => {
        await worker.stop();
        await http?.close();
        await zk.close();
      })();
      return stopping;
    },
  };
}

/** `mha server --config F`: runs until SIGTERM/SIGINT, then stops cleanly (exit 0). */
export async function runServer(configPath?: string): Promise<void> {
  const cfg = loadConfig(configPath);
  requireSection(cfg, 'server');
  const log = createLogger({ level: cfg.log.level, name: 'zkmha-server' });
  const handle = await startServer(cfg, { logger: log });
  await stopOnSignal(log, 'stopping server worker', () => handle.stop());
}
