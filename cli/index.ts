import type { Command } from 'commander';
import { withContext } from './context';
import { initLayout } from './init';

/**
 * Registers the admin commands of design §7 on the `mha` program. Every command takes
 * `--config F` after its name (else $MHA_CONFIG, else /etc/zkmha/mha.yaml).
 */
export function registerAdminCommands(program: Command): void {
  program
    .command('init')
    .description('create the ZooKeeper root layout (idempotent)')
    .option('--config <file>', 'configuration file')
    .action(async (opts: { config?: string }) => {
      const created = await withContext(opts.config, initLayout);
      process.stdout.write(created.length > 0 ? `created ${created.join(' ')}\n` : 'layout already present\n');
    });
}
