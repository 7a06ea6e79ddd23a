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
    super(message);
    this.name = 'ZkmhaError';
  }
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
