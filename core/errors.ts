/**
 * Errors with a stable `code`, so the CLI maps them to exit codes and tests assert on them.
 */
export type ErrorCode =
  | 'BAD_USAGE' // bad CLI arguments or input: exit 2
  | 'BAD_CONFIG' // config file missing or invalid: exit 2
  | 'BAD_RECORD' // a znode value failed validation
  | 'BAD_NAME' // a group, host, port or node name failed validation
  | 'ZK_TIMEOUT'
  | 'ZK_ERROR'
  | 'ZK_NO_NODE'
  | 'ZK_NODE_EXISTS'
  | 'ZK_BAD_VERSION'
  | 'ZK_CONNECTION_LOSS'
  | 'ZK_SESSION_EXPIRED'
  | 'ZK_NO_AUTH' // the node's ACL refuses this session's credential
  | 'LOCK_TIMEOUT'
  | 'MYSQL_ERROR'
  | 'MYSQL_TIMEOUT'
  | 'HAPROXY_ERROR'
  | 'TIMEOUT'
  | 'CONFLICT' // the cluster is not in the state the operation needs
  | 'OPERATION_FAILED';

export class ZkmhaError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(INPUT_CODES.has(code) ? oneLine(message) : message);
    this.name = 'ZkmhaError';
  }
}

/** Codes whose messages quote refused input (an argument, a config value, a znode value). */
const INPUT_CODES: ReadonlySet<ErrorCode> = new Set(['BAD_USAGE', 'BAD_CONFIG', 'BAD_RECORD', 'BAD_NAME']);
const MAX_MESSAGE = 1024;
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f\u2028\u2029]/g;

/**
 * A refused value is quoted into its error, which goes to stderr, logs and alerts: control
 * characters are escaped (one line, no forged log lines, no terminal escapes) and the length is
 * bounded.
 */
export function oneLine(message: string): string {
  const s = message.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return s.length <= MAX_MESSAGE ? s : `${s.slice(0, MAX_MESSAGE - 1)}…`;
}

export function isZkmhaError(err: unknown, code?: ErrorCode): err is ZkmhaError {
  return err instanceof ZkmhaError && (code === undefined || err.code === code);
}

/** Exit code of design §7: 2 for bad usage or input, 1 for a failed operation. */
export function exitCodeFor(err: unknown): 1 | 2 {
  if (err instanceof ZkmhaError && ['BAD_USAGE', 'BAD_CONFIG', 'BAD_NAME'].includes(err.code)) return 2;
  return 1;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
