import * as os from 'node:os';

/** Who the CLI is in lock and task records: `cli:<host>:<pid>`. */
export function cliWorker(): string {
  return `cli:${os.hostname()}:${process.pid}`.slice(0, 128);
}
