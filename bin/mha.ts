#!/usr/bin/env node
/**
 * The one executable: composes the four roles (design §1). Only this file imports role folders.
 */
import { Command, CommanderError } from 'commander';
import { registerAdminCommands } from '../cli/index';
import { runClient } from '../client/main';
import { runServer } from '../server/main';
import { runRouter } from '../router/main';
import { errorMessage, exitCodeFor } from '../core/errors';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('mha')
    .description('zkmha: high availability for MySQL/MariaDB replication groups via ZooKeeper and HAProxy')
    .version(version, '-V, --version')
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({ outputError: () => undefined });
  registerAdminCommands(program);
  program
    .command('client')
    .description('run the heartbeat client beside one mysqld (design §4)')
    .option('--config <file>', 'configuration file')
    .action((opts: { config?: string }) => runClient(opts.config));
  program
    .command('server')
    .description('run a server worker: failure detection, failover, read-pool upkeep (design §5)')
    .option('--config <file>', 'configuration file')
    .action((opts: { config?: string }) => runServer(opts.config));
  program
    .command('router')
    .description('run the router agent beside HAProxy: HAProxy follows haproxy/<group> (design §6)')
    .option('--config <file>', 'configuration file')
    .action((opts: { config?: string }) => runRouter(opts.config));
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with code 0.
      if (err.exitCode === 0) return 0;
      process.stderr.write(`mha: ${err.message.replace(/^error: /, '')}\n`);
      return 2;
    }
    // A multi-line error (`mha config check`: one line per problem) gets the prefix on each line.
    for (const line of errorMessage(err).split('\n')) process.stderr.write(`mha: ${line}\n`);
    return exitCodeFor(err);
  }
}

if (require.main === module) {
  // `mha status | head`: a reader that went away is the end of the output, not a crash.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`mha: ${errorMessage(err)}\n`);
      process.exitCode = 1;
    },
  );
}
