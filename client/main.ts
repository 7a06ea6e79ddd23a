import { loadConfig, requireSection } from '../core/config';
import { errorMessage } from '../core/errors';
import { createLogger } from '../core/log';
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
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, node: cc.node }, 'stopping heartbeat client');
      handle.stop().then(resolve, (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'error while stopping');
        resolve();
      });
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}
