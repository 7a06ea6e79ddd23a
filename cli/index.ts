import type { Command } from 'commander';
import { configPath } from '../core/config';
import { ZkmhaError } from '../core/errors';
import { untilSignal } from '../core/signals';
import { runAdd } from './add';
import { alertJson, clearAlerts, followAlerts, listAlerts, renderAlerts, runAlertCommand } from './alerts';
import {
  dcArg,
  execArg,
  flavorArg,
  groupArg,
  nodeArg,
  nodeListArg,
  portArg,
  positiveIntArg,
  priorityArg,
  semiSyncArg,
  textArg,
  usage,
} from './args';
import { checkConfigFile, renderConfigCheck } from './config-check';
import { withContext } from './context';
import { drain, undrain } from './drain';
import { runGaleraAdd } from './galera-add';
import { registerFailoverCommand } from './failover';
import { readHistory, renderHistory } from './history';
import { addHost, removeHost } from './hosts';
import { initLayout } from './init';
import { printOut, toJson } from './output';
import { setHa } from './setha';
import { setMaster } from './setmaster';
import { readStatus, renderStatus } from './status';
import { switchover, switchoverFaultFromEnv } from './switchover';
import { unban } from './ban';
import { setWhite, unWhite } from './white';

/**
 * Registers the admin commands of design §7 on the `mha` program. Every command takes
 * `--config F` after its name (else $MHA_CONFIG, else /etc/zkmha/mha.yaml). Input is validated
 * before anything is touched (exit 2, one line); a failed operation names its step (exit 1).
 */
interface Common {
  config?: string;
  json?: boolean;
}

const CONFIG = [
  '--config <file>',
  'configuration file (default $MHA_CONFIG, then /etc/zkmha/mha.yaml)',
] as const;
const JSON_OPT = ['--json', 'machine-readable output'] as const;

export function registerAdminCommands(program: Command): void {
  registerFailoverCommand(program);
  program
    .command('init')
    .description('create the ZooKeeper root layout (idempotent)')
    .option(
      '--acl',
      'set per-role digest ACLs (zookeeper.acl: servers and admin all, routers read, clients their own nodes) on the layout and every node in it',
    )
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (opts: Common & { acl?: boolean }) => {
      const r = await withContext(opts.config, (ctx) => initLayout(ctx, { acl: opts.acl === true }));
      if (opts.json === true) return printOut(toJson(r));
      printOut(
        (r.created.length > 0 ? `created ${r.created.join(' ')}\n` : 'layout already present\n') +
          (r.roles !== null
            ? `ACLs set on ${r.aclNodes} nodes: all rights ${r.roles.full.join(', ')}; read ${[...r.roles.router, ...r.roles.client].join(', ')}; ` +
              `routers ${r.roles.router.join(', ')} write their own status and alerts; clients ${r.roles.client.join(', ')} their own online/ and agent/\n`
            : ''),
      );
    });

  program
    .command('config')
    .description('configuration tools')
    .command('check')
    .description(
      'validate a config file and every file it names (presence, modes, access); say what each role would do',
    )
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action((opts: Common) => {
      const r = checkConfigFile(configPath(opts.config));
      if (opts.json === true) printOut(toJson(r));
      else if (r.ok) printOut(renderConfigCheck(r));
      // One line per problem on stderr (bin/mha prefixes each), exit 2.
      if (!r.ok)
        throw new ZkmhaError('BAD_CONFIG', `${r.file}: ${r.problems.length} problem(s)`, {
          lines: r.problems.map((p) => `${r.file}: ${p}`),
          // --json already printed the result (ok: false, problems): no second JSON document.
          jsonPrinted: opts.json === true,
        });
    });

  program
    .command('add <group>')
    .description(
      'register a group on its nodes: choose the master, set up GTID replication, write master/ and haproxy/',
    )
    .option('--nodes <list>', 'host:port,host:port,…')
    .option('--write-port <n>', 'HAProxy write listener port')
    .option('--read-port <n>', 'HAProxy read listener port')
    .option('--master <node>', 'the master (default: the most advanced by GTID, else the first)')
    .option('--flavor <name>', 'mariadb (default), or galera: register an existing Galera cluster')
    .option(
      '--semi-sync [policy]',
      'semi-synchronous replication (AFTER_SYNC): on (the default when given bare) falls back to async after --semi-sync-timeout-ms; required never does (commits wait)',
    )
    .option(
      '--semi-sync-timeout-ms <ms>',
      'how long a commit waits for a replica under --semi-sync on (default 1000)',
    )
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(
      async (
        g: string,
        opts: Common & {
          nodes?: string;
          writePort?: string;
          readPort?: string;
          master?: string;
          flavor?: string;
          semiSync?: string | boolean;
          semiSyncTimeoutMs?: string;
        },
      ) => {
        const group = groupArg(g);
        const nodes = nodeListArg(opts.nodes);
        const writePort = portArg(opts.writePort, '--write-port');
        const readPort = portArg(opts.readPort, '--read-port');
        if (writePort === readPort) throw usage('--write-port and --read-port must differ');
        const master = opts.master !== undefined ? nodeArg(opts.master, '--master') : undefined;
        if (master !== undefined && !nodes.includes(master))
          throw usage(`--master ${master} is not in --nodes`);
        const flavor = flavorArg(opts.flavor);
        if (flavor === 'galera') {
          if (opts.semiSync !== undefined || opts.semiSyncTimeoutMs !== undefined)
            throw usage('--semi-sync does not apply to --flavor galera (Galera replicates synchronously)');
          const r = await withContext(opts.config, (ctx) =>
            runGaleraAdd(ctx, {
              group,
              nodes,
              writePort,
              readPort,
              ...(master !== undefined ? { master } : {}),
            }),
          );
          if (opts.json === true) return printOut(toJson({ ...r, flavor, epoch: 1 }));
          printOut(
            `galera group ${r.group} added: writer ${r.master} (${r.why}), epoch 1; readers ${r.replicas.join(', ') || 'none'}\n`,
          );
          return;
        }
        const semiSync = semiSyncArg(opts.semiSync);
        const semiSyncTimeoutMs = positiveIntArg(opts.semiSyncTimeoutMs, '--semi-sync-timeout-ms', 1000);
        if (opts.semiSyncTimeoutMs !== undefined && semiSync !== 'on')
          throw usage('--semi-sync-timeout-ms needs --semi-sync on');
        const r = await withContext(opts.config, (ctx) =>
          runAdd(ctx, {
            group,
            nodes,
            writePort,
            readPort,
            flavor,
            semiSync,
            semiSyncTimeoutMs,
            ...(master !== undefined ? { master } : {}),
          }),
        );
        if (opts.json === true) return printOut(toJson({ ...r, flavor, epoch: 1 }));
        printOut(
          `group ${r.group} added: master ${r.master} (${r.why}), epoch 1; replicas ${r.replicas.length > 0 ? r.replicas.join(', ') : 'none'}\n`,
        );
      },
    );

  program
    .command('addhost <group> <node>')
    .description('add a replica to a running group')
    .option('--priority <n>', '0 never promote, 1 preferred (default), 2 only if no 1')
    .option('--dc <name>', 'data centre')
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (g: string, n: string, opts: Common & { priority?: string; dc?: string }) => {
      const group = groupArg(g);
      const node = nodeArg(n);
      const priority = priorityArg(opts.priority);
      const dc = dcArg(opts.dc);
      const r = await withContext(opts.config, (ctx) =>
        addHost(ctx, { group, node, priority, ...(dc !== undefined ? { dc } : {}) }),
      );
      if (opts.json === true) return printOut(toJson(r));
      printOut(`${r.node} added to ${r.group}, replicating from ${r.master}, in the read pool\n`);
    });

  program
    .command('removehost <group> <node>')
    .description('unregister a replica (replication on it is left as it is)')
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (g: string, n: string, opts: Common) => {
      const group = groupArg(g);
      const node = nodeArg(n);
      await withContext(opts.config, (ctx) => removeHost(ctx, group, node));
      if (opts.json === true) return printOut(toJson({ group, node, removed: true }));
      printOut(`${node} removed from ${group}\n`);
    });

  program
    .command('setwhite <group>')
    .description('maintenance on: no automatic failover for the group')
    .option('--reason <text>', 'why')
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (g: string, opts: Common & { reason?: string }) => {
      const group = groupArg(g);
      const reason = textArg(opts.reason, '--reason');
      const r = await withContext(opts.config, (ctx) => setWhite(ctx, group, reason));
      if (opts.json === true)
        return printOut(toJson({ group, maintenance: true, reason: r.reason, by: r.by, at: r.at }));
      printOut(
        `${group}: maintenance on (${r.reason}); no automatic failover until 'mha unwhite ${group}'\n`,
      );
    });

  program
    .command('unwhite <group>')
    .description('maintenance off')
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (g: string, opts: Common) => {
      const group = groupArg(g);
      const was = await withContext(opts.config, (ctx) => unWhite(ctx, group));
      if (opts.json === true) return printOut(toJson({ group, maintenance: false, changed: was }));
      printOut(was ? `${group}: maintenance off\n` : `${group}: maintenance was not on\n`);
    });

  program
    .command('setmaster <group> <node>')
    .description('adopt the node that really is the master after manual work (master/ epoch+1)')
    .option('--reroute', 'also point haproxy/ at it')
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (g: string, n: string, opts: Common & { reroute?: boolean }) => {
      const group = groupArg(g);
      const node = nodeArg(n);
      const r = await withContext(opts.config, (ctx) => setMaster(ctx, group, node, opts.reroute === true));
      if (opts.json === true) return printOut(toJson(r));
      printOut(
        `${group}: master is ${r.node} at epoch ${r.epoch}${r.rerouted ? ', route updated' : `; route NOT updated (use --reroute)`}` +
          `${r.clearedTask !== null ? `; cleared the unfinished ${r.clearedTask} task` : ''}\n`,
      );
    });

  program
    .command('switchover <group>')
    .description('planned master change with no lost transaction')
    .option('--to <node>', 'the replica to promote (default: the one a failover would choose)')
    .option('--max-pause-ms <n>', 'budget for the candidate to catch up once writes are cut (default 2000)')
    .option(
      '--catch-up-timeout-ms <n>',
      'how long the candidate may take to catch up before writes are cut (default 10000; 0: do not wait)',
    )
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(
      async (g: string, opts: Common & { to?: string; maxPauseMs?: string; catchUpTimeoutMs?: string }) => {
        const group = groupArg(g);
        const to = opts.to !== undefined ? nodeArg(opts.to, '--to') : undefined;
        const maxPauseMs = positiveIntArg(opts.maxPauseMs, '--max-pause-ms', 2000, 600_000);
        const catchUpTimeoutMs =
          opts.catchUpTimeoutMs === '0'
            ? 0
            : positiveIntArg(opts.catchUpTimeoutMs, '--catch-up-timeout-ms', 10000, 3_600_000);
        const fault = switchoverFaultFromEnv(process.env.MHA_FAULT_SWITCHOVER_PAUSE_BEFORE_STEP);
        const r = await withContext(opts.config, (ctx) =>
          switchover(ctx, {
            group,
            maxPauseMs,
            catchUpTimeoutMs,
            ...(to !== undefined ? { to } : {}),
            ...(fault !== undefined ? { pauseBeforeStep: fault } : {}),
          }),
        );
        if (opts.json === true) return printOut(toJson(r));
        const bad = Object.entries(r.repointed).filter(([, v]) => !v.ok);
        printOut(
          `${group}: switched over ${r.from} -> ${r.to} (epoch ${r.epoch}); write pause ${r.pauseMs} ms\n` +
            `  steps: ${r.steps.map((s) => `${s.name} ${s.ms}ms`).join(', ')}\n` +
            bad
              .map(
                ([n, v]) => `  ! ${n} not re-pointed: ${v.ok ? '' : v.error} (fix with 'mha setha ${n}')\n`,
              )
              .join(''),
        );
      },
    );

  program
    .command('setha <node>')
    .description('return a recovered node to service: re-point it to the master, back into the read pool')
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (n: string, opts: Common) => {
      const node = nodeArg(n);
      const r = await withContext(opts.config, (ctx) => setHa(ctx, node));
      if (opts.json === true) return printOut(toJson(r));
      printOut(`${r.node} replicates from ${r.master} and is back in the read pool of ${r.group}\n`);
    });

  program
    .command('unban <node>')
    .description(
      'lift the ban a node got for failing over too often (banAfterFailovers), so it may be promoted again',
    )
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (n: string, opts: Common) => {
      const node = nodeArg(n);
      const r = await withContext(opts.config, (ctx) => unban(ctx, node));
      if (opts.json === true) return printOut(toJson(r));
      printOut(
        r.lifted !== null
          ? `${node} (group ${r.group}) unbanned: it may be promoted again (was banned after failovers at epochs ${r.lifted.epochs.join(', ')})\n`
          : `${node} (group ${r.group}) was not banned\n`,
      );
    });

  program
    .command('drain <node>')
    .description(
      'take a replica out of the read pool (replication untouched); a Galera writer hands writes over first',
    )
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (n: string, opts: Common) => {
      const node = nodeArg(n);
      const r = await withContext(opts.config, (ctx) => drain(ctx, node));
      if (opts.json === true) return printOut(toJson(r));
      const moved = r.writer !== undefined ? `; writes moved to ${r.writer} (epoch ${r.epoch})` : '';
      const note = r.note !== undefined ? ` (${r.note})` : '';
      printOut(
        r.changed
          ? `${node} drained from the read pool of ${r.group}${moved}${note}\n`
          : `${node} was already drained\n`,
      );
    });

  program
    .command('undrain <node>')
    .description('return a drained replica to the read pool')
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (n: string, opts: Common) => {
      const node = nodeArg(n);
      const r = await withContext(opts.config, (ctx) => undrain(ctx, node));
      if (opts.json === true) return printOut(toJson(r));
      printOut(
        `${node}: ${r.inReadPool === true ? 'in the read pool' : 'not in the read pool'}${r.note !== undefined ? ` (${r.note})` : ''}\n`,
      );
    });

  program
    .command('status [group]')
    .description('groups, nodes, roles, lag, routers and the epoch each applied, alerts, next candidate')
    .option('--no-mysql', 'do not connect to MySQL (positions from online/ records)')
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (g: string | undefined, opts: Common & { mysql: boolean }) => {
      const group = g !== undefined ? groupArg(g) : undefined;
      const r = await withContext(opts.config, (ctx) =>
        readStatus(ctx, { mysql: opts.mysql, ...(group !== undefined ? { group } : {}) }),
      );
      printOut(opts.json === true ? toJson(r) : renderStatus(r, Date.now()));
    });

  program
    .command('alerts')
    .description('list watch_down/ alerts; --follow reports new ones; --clear acknowledges a group')
    .option('--follow', 'print one JSON line per new alert (or run --exec) until interrupted')
    .option(
      '--exec <cmd>',
      'with --follow: run CMD (split on whitespace, no shell) with MHA_ALERT_GROUP, MHA_ALERT_KIND, MHA_ALERT_JSON',
    )
    .option('--clear <group>', "delete the group's alerts (acknowledge)")
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (opts: Common & { follow?: boolean; exec?: string; clear?: string }) => {
      const argv = execArg(opts.exec);
      if (argv !== undefined && opts.follow !== true) throw usage('--exec needs --follow');
      if (opts.clear !== undefined && (opts.follow === true || argv !== undefined))
        throw usage('--clear cannot be combined with --follow or --exec');
      const clear = opts.clear !== undefined ? groupArg(opts.clear) : undefined;
      await withContext(opts.config, async (ctx) => {
        if (clear !== undefined) {
          const deleted = await clearAlerts(ctx, clear);
          return printOut(
            opts.json === true
              ? toJson({ cleared: deleted })
              : deleted.length > 0
                ? `cleared ${deleted.join(', ')}\n`
                : `no alerts for ${clear}\n`,
          );
        }
        if (opts.follow !== true) {
          const entries = await listAlerts(ctx);
          return printOut(opts.json === true ? toJson(entries) : renderAlerts(entries));
        }
        const follower = await followAlerts(
          ctx,
          async (a) => {
            if (argv === undefined) return printOut(JSON.stringify(alertJson(a)) + '\n');
            const code = await runAlertCommand(argv, a);
            if (code !== 0) process.stderr.write(`mha alerts: ${argv[0]} exited ${code} for ${a.name}\n`);
          },
          (name, error) => process.stderr.write(`mha alerts: invalid alert ${name}: ${error}\n`),
        );
        process.stderr.write('following alerts (Ctrl-C to stop)\n');
        await untilSignal();
        await follower.stop();
      });
    });

  program
    .command('history <group>')
    .description('past failovers and switchovers with step timings')
    .option(...JSON_OPT)
    .option(...CONFIG)
    .action(async (g: string, opts: Common) => {
      const group = groupArg(g);
      const entries = await withContext(opts.config, (ctx) => readHistory(ctx, group));
      printOut(opts.json === true ? toJson(entries) : renderHistory(group, entries));
    });
}
