#!/usr/bin/env node
/**
 * The one executable: composes the four roles (design §1). Only this file imports role folders.
 */
import { Command, CommanderError } from 'commander';
import { registerAdminCommands } from '../cli/index';
import { runClient } from '../client/main';
import { runNotify } from '../client/notify';
import { runServer } from '../server/main';
import { runRouter } from '../router/main';
import { runWeb } from '../web/main';
import { errorMessage, exitCodeFor, isZkmhaError, oneLine } from '../core/errors';

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
  const client = program
    .command('client')
    .description('run the heartbeat client beside one mysqld (design §4)')
    .option('--config <file>', 'configuration file')
    .action((opts: { config?: string }) => runClient(opts.config));
  client
    .command('notify')
    .description('for wsrep_notify_cmd: tell the agent at --agent host:port that the wsrep state changed')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action((_opts: unknown, cmd: Command) => runNotify(cmd.args));
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
  program
    .command('web')
    .description('serve the read-only live status page and JSON API (loopback by default)')
    .option('--config <file>', 'configuration file')
    .option('--listen <host:port>', 'address to serve on (default web.host:web.port, 127.0.0.1:8090)')
    .action((opts: { config?: string; listen?: string }) => runWeb(opts.config, opts.listen));
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // A script that asked for --json gets its failure as JSON on stdout too (stderr is unchanged).
  const json = argv.slice(2, argv.includes('--') ? argv.indexOf('--') : undefined).includes('--json');
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with code 0.
      if (err.exitCode === 0) return 0;
      // One line: commander's "(Did you mean …?)" goes on the same line; quoted input is escaped.
      const message = oneLine(
        err.message
          .replace(/^error: /, '')
          .replace(/\n+/g, ' ')
          .trim(),
      );
      process.stderr.write(`mha: ${message}\n`);
      if (json) printJsonError('BAD_USAGE', [message], 2);
      return 2;
    }
    // An error that lists several problems (`mha config check`) prints one escaped line for each.
    const lines =
      isZkmhaError(err) && Array.isArray(err.details?.lines)
        ? err.details.lines.map((l) => oneLine(String(l)))
        : [errorMessage(err)];
    for (const line of lines) process.stderr.write(`mha: ${line}\n`);
    const exitCode = exitCodeFor(err);
    if (json && !(isZkmhaError(err) && err.details?.jsonPrinted === true))
      printJsonError(isZkmhaError(err) ? err.code : 'OPERATION_FAILED', lines, exitCode);
    return exitCode;
  }
}

/** The failure shape of every `--json` command (README "CLI for scripts"). */
function printJsonError(code: string, lines: readonly string[], exitCode: number): void {
  process.stdout.write(
    JSON.stringify({ error: { code, message: lines.join('; '), lines, exitCode } }) + '\n',
  );
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
