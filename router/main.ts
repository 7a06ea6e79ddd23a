import { loadConfig, requireSection } from '../core/config';
import { createLogger } from '../core/log';
import { RouterAgent } from './agent';

export { RouterAgent } from './agent';

/**
 * `mha router --config F`: runs the router agent until SIGTERM or SIGINT, then stops it cleanly
 * (its meta_router/<id> goes away with its session; HAProxy keeps serving).
 */
export async function runRouter(configPath: string | undefined): Promise<void> {
  const cfg = loadConfig(configPath);
  const router = requireSection(cfg, 'router');
  const log = createLogger({ level: cfg.log.level, name: `router:${router.id}` });
  const agent = new RouterAgent({ router, zookeeper: cfg.zookeeper, log });
  await agent.start();
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      log.info({ signal: sig }, 'router: stopping');
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await agent.stop();
}
