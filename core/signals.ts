import { errorMessage } from './errors';
import type { Logger } from './log';

/**
 * How a long-running command (`mha client|server|router`, `mha alerts --follow`) waits for
 * SIGTERM or SIGINT.
 */

/**
 * Resolves with the first SIGTERM or SIGINT. Both handlers are removed then, so a further signal
 * has its default effect (ends the process).
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/**
 * On the first SIGTERM or SIGINT, logs `message` (with the signal and `fields`) and runs `stop`;
 * resolves once it finished. A failing `stop` is logged, not thrown, so the process still ends
 * normally. The other signal is ignored while stopping.
 */
export function stopOnSignal(
  log: Logger,
  message: string,
  stop: () => Promise<void>,
  fields: Readonly<Record<string, unknown>> = {},
): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, ...fields }, message);
      stop().then(resolve, (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'error while stopping');
        resolve();
      });
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}
