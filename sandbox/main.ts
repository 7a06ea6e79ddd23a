#!/usr/bin/env node
import { errorMessage, exitCodeFor, ZkmhaError } from '../core/errors';
import { down, killMaster, restart, status, up } from './sandbox';

/**
 * `node dist/sandbox/main.js up [--port-base N] | status | kill-master | restart <node> | down`
 * (normally through `bash scripts/sandbox.sh`, which installs what is missing and builds first).
 */
const USAGE =
  'usage: sandbox.sh up [--port-base N] | status | kill-master | restart <n1|n2|n3|host:port> | down';

function parsePortBase(args: readonly string[]): number | undefined {
  if (args.length === 0) return undefined;
  if (args.length === 2 && args[0] === '--port-base' && /^\d{4,5}$/.test(args[1]!)) return Number(args[1]);
  throw new ZkmhaError('BAD_USAGE', `up takes only --port-base N; ${USAGE}`);
}

export async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const noArgs = (): void => {
    if (rest.length > 0) throw new ZkmhaError('BAD_USAGE', `${cmd} takes no arguments; ${USAGE}`);
  };
  switch (cmd) {
    case 'up':
      await up({ portBase: parsePortBase(rest) });
      return 0;
    case 'down':
      noArgs();
      await down();
      return 0;
    case 'status':
      noArgs();
      return status();
    case 'kill-master':
      noArgs();
      await killMaster();
      return 0;
    case 'restart':
      if (rest.length !== 1) throw new ZkmhaError('BAD_USAGE', `restart takes one node; ${USAGE}`);
      await restart(rest[0]);
      return 0;
    default:
      throw new ZkmhaError('BAD_USAGE', cmd === undefined ? USAGE : `unknown command '${cmd}'; ${USAGE}`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`sandbox: ${errorMessage(err)}\n`);
      process.exitCode = exitCodeFor(err);
    },
  );
}
