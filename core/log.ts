import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs for daemons; readable lines when stdout is a terminal. Secrets never reach here:
 * config secrets serialise as '***' and the redact list catches stray fields.
 */
export function createLogger(opts: { level?: string; name?: string; pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  return pino({
    level: opts.level ?? process.env.MHA_LOG_LEVEL ?? 'info',
    ...(opts.name ? { name: opts.name } : {}),
    redact: {
      paths: ['password', '*.password', 'replicationPassword', '*.replicationPassword'],
      censor: '***',
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, destination: 1 } } } : {}),
  });
}
