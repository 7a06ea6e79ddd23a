import { loadConfig, requireSection } from '../core/config';
import { createLogger } from '../core/log';
import { stopOnSignal } from '../core/signals';
import { startClient, type ClientHandle } from './agent';

export { startClient, type ClientHandle, type StartClientOptions } from './agent';

/**
 * `mha client --config F`: runs the heartbeat client until SIGTERM/SIGINT, then closes its
 * ZooKeeper session (online/ and agent/ go at once), its HTTP listener and its MySQL connection.
 */
export async function runClient(configPath?: string): Promise<void> {
  const cfg = loadConfig(configPath);
  const cc = requireSection(cfg, 'client');
  const log = createLogger({ level: cfg.log.level, name: 'zkmha-client' });
  const handle: ClientHandle = await startClient(cfg, { logger: log });
  await stopOnSignal(log, 'stopping heartbeat client', () => handle.stop(), { node: cc.node });
}
