import { loadConfig, requireSection } from '../core/config';
import { createLogger } from '../core/log';
import { untilSignal } from '../core/signals';
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
  const signal = await untilSignal();
  log.info({ signal }, 'router: stopping');
  await agent.stop();
}
