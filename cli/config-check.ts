import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseConfig, validateConfigDocument, type Config, type RawConfig } from '../core/config';
import { errorMessage } from '../core/errors';

/**
 * `mha config check --config F`: the config file and every file it names, checked the way the
 * processes will use them, without connecting anywhere. Problems (each one line) mean a process
 * would refuse to start or fail at its first use of the file; warnings are state that may be fine
 * at check time (a mysqld socket that appears when mysqld starts). A check that passes has also
 * loaded the file through the real loader, so `mha <role> --config F` accepts it.
 */
export interface ConfigCheck {
  readonly file: string;
  readonly ok: boolean;
  readonly problems: readonly string[];
  readonly warnings: readonly string[];
  /** What each role (and the admin CLI) would do with this file; only when there is no problem. */
  readonly roles: Readonly<Record<'zookeeper' | 'admin' | 'server' | 'client' | 'router', string>>;
}

type Access = 'read' | 'write';

/** Problems with a file the config names (secret: a password file, refused if group/other can read it). */
function fileProblems(key: string, file: string, opts: { secret?: boolean } = {}): string[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return [`${key}: '${file}' does not exist`];
  }
  if (!st.isFile()) return [`${key}: '${file}' is not a regular file`];
  const out: string[] = [];
  if (!canAccess(file, 'read')) out.push(`${key}: '${file}' is not readable by this user`);
  if (opts.secret === true) {
    if ((st.mode & 0o077) !== 0)
      out.push(
        `${key}: '${file}' is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    else if (st.size === 0) out.push(`${key}: '${file}' is empty`);
  }
  return out;
}

/** A directory the process reads (or writes into, creating it if missing). */
function dirProblems(key: string, dir: string, access: Access): string[] {
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(dir);
  } catch {
    st = null;
  }
  if (st !== null) {
    if (!st.isDirectory()) return [`${key}: '${dir}' is not a directory`];
    if (!canAccess(dir, access)) return [`${key}: '${dir}' is not ${access}able by this user`];
    return [];
  }
  if (access === 'read') return [`${key}: '${dir}' does not exist`];
  // Created on first use: the nearest existing ancestor must be writable.
  let up = path.dirname(dir);
  while (!fs.existsSync(up) && path.dirname(up) !== up) up = path.dirname(up);
  return canAccess(up, 'write') ? [] : [`${key}: '${dir}' does not exist and '${up}' is not writable`];
}

function canAccess(p: string, access: Access): boolean {
  try {
    fs.accessSync(p, access === 'read' ? fs.constants.R_OK : fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** `haproxy` as the router spawns it: an absolute/relative path, else looked up on PATH. */
function executableProblems(key: string, bin: string): string[] {
  const candidates = bin.includes('/')
    ? [bin]
    : (process.env.PATH ?? '').split(':').map((d) => path.join(d === '' ? '.' : d, bin));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return [];
    } catch {
      // next
    }
  }
  return [`${key}: '${bin}' is not an executable file${bin.includes('/') ? '' : ' on PATH'}`];
}

function namedFileProblems(raw: RawConfig, resolve: (p: string) => string): string[] {
  const out: string[] = [];
  const zk = raw.zookeeper;
  if (zk.auth)
    out.push(...fileProblems('zookeeper.auth.passwordFile', resolve(zk.auth.passwordFile), { secret: true }));
  for (const role of ['server', 'router', 'client'] as const) {
    const f = zk.acl?.[role].passwordFile;
    if (f !== undefined)
      out.push(...fileProblems(`zookeeper.acl.${role}.passwordFile`, resolve(f), { secret: true }));
  }
  if (zk.acl && !zk.auth)
    out.push("zookeeper.acl: needs zookeeper.auth (the admin's own credential) for 'mha init --acl'");
  const m = raw.mysql;
  if (m.passwordFile !== undefined)
    out.push(...fileProblems('mysql.passwordFile', resolve(m.passwordFile), { secret: true }));
  if (m.replicationPasswordFile !== undefined)
    out.push(
      ...fileProblems('mysql.replicationPasswordFile', resolve(m.replicationPasswordFile), { secret: true }),
    );
  if (m.tls !== undefined) {
    // The same paths are named to every replica's mysqld in CHANGE MASTER; only this host's copy is checked.
    out.push(...fileProblems('mysql.tls.ca', resolve(m.tls.ca)));
    if (m.tls.cert !== undefined) out.push(...fileProblems('mysql.tls.cert', resolve(m.tls.cert)));
    if (m.tls.key !== undefined)
      out.push(...fileProblems('mysql.tls.key', resolve(m.tls.key), { secret: true }));
  }
  const c = raw.client;
  if (c) {
    out.push(...dirProblems('client.binlogDir', resolve(c.binlogDir), 'read'));
    out.push(...dirProblems('client.dataDir', resolve(c.dataDir), 'write'));
  }
  const r = raw.router;
  if (r) {
    out.push(...fileProblems('router.template', resolve(r.template)));
    out.push(
      ...dirProblems('router.haproxyConfig (its directory)', path.dirname(resolve(r.haproxyConfig)), 'write'),
    );
    out.push(...dirProblems('router.stateDir', resolve(r.stateDir), 'write'));
    out.push(...executableProblems('router.haproxyBin', r.haproxyBin));
    for (const key of ['masterSocket', 'adminSocket'] as const)
      out.push(...dirProblems(`router.${key} (its directory)`, path.dirname(resolve(r[key])), 'read'));
  }
  return out;
}

function namedFileWarnings(raw: RawConfig, resolve: (p: string) => string): string[] {
  const out: string[] = [];
  const m = raw.mysql;
  if (m.password !== undefined) out.push('mysql.password is inline: prefer mysql.passwordFile (0600)');
  if (m.replicationPassword !== undefined)
    out.push('mysql.replicationPassword is inline: prefer mysql.replicationPasswordFile (0600)');
  const socket = raw.client?.socket;
  if (socket !== undefined && !fs.existsSync(resolve(socket)))
    out.push(`client.socket: '${resolve(socket)}' does not exist now (it appears when mysqld runs)`);
  return out;
}

function describeRoles(cfg: Config): ConfigCheck['roles'] {
  const zk = cfg.zookeeper;
  const m = cfg.mysql;
  const absent = (role: string) => `no ${role} section: 'mha ${role}' would refuse to start with this file`;
  return {
    zookeeper:
      `connects to ${zk.hosts} under ${zk.root}, session ${zk.sessionTimeoutMs} ms, ` +
      (zk.auth ? `digest auth as '${zk.auth.user}'` : 'no authentication (open ACLs)') +
      (zk.acl
        ? `; 'mha init --acl' grants all rights to '${zk.auth?.user ?? '?'}' and '${userOf(zk.acl.server)}', read to '${userOf(zk.acl.router)}' (routers) and '${userOf(zk.acl.client)}' (clients)`
        : ''),
    admin:
      `admin commands connect to MySQL as '${m.user}'${m.password.reveal() === '' ? ' with no password' : ''}, replication as '${m.replicationUser}'` +
      (m.tls
        ? `; TLS with CA ${m.tls.caFile}${m.tls.certFile !== undefined ? ` and client certificate ${m.tls.certFile}` : ''}` +
          `${m.tls.verifyServerCert ? '' : ' (server names not checked)'}, replicas told the same paths (MASTER_SSL)`
        : '; no TLS'),
    server: cfg.server
      ? `worker '${cfg.server.id}': watches every group, fails over a dead master under lock/<group>, keeps read pools (reconcile every ${cfg.server.reconcileIntervalMs} ms)`
      : absent('server'),
    client: cfg.client
      ? `heartbeat for ${cfg.client.node} via ${cfg.client.socket ?? `TCP ${cfg.client.node}`}: checks every ${cfg.client.checkIntervalMs} ms, down after ${cfg.client.failAfter} timeouts; ` +
        `HTTP checks on ${cfg.client.httpHost}:${cfg.client.httpPort}; binlogs read from ${cfg.client.binlogDir}; rollback files in ${cfg.client.dataDir}`
      : absent('client'),
    router: cfg.router
      ? `router '${cfg.router.id}': renders ${cfg.router.template} into ${cfg.router.haproxyConfig}, drives HAProxy through ${cfg.router.masterSocket} and ${cfg.router.adminSocket} ` +
        `(starts ${cfg.router.haproxyBin} itself if none answers), keeps its last applied state in ${cfg.router.stateDir}, listeners bound to ${cfg.router.bindAddress}`
      : absent('router'),
  };
}

const userOf = (id: string): string => id.slice(0, id.indexOf(':'));

const NO_ROLES: ConfigCheck['roles'] = { zookeeper: '-', admin: '-', server: '-', client: '-', router: '-' };

export function checkConfigFile(file: string): ConfigCheck {
  const fail = (problems: string[], warnings: string[] = []): ConfigCheck => ({
    file,
    ok: false,
    problems,
    warnings,
    roles: NO_ROLES,
  });
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return fail([`cannot read '${file}'`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return fail([`not valid YAML (${errorMessage(err).split('\n')[0]})`]);
  }
  const valid = validateConfigDocument(doc);
  if (!valid.ok) return fail(valid.problems);
  const dir = path.dirname(path.resolve(file));
  const resolve = (p: string) => path.resolve(dir, p);
  const problems = namedFileProblems(valid.raw, resolve);
  const warnings = namedFileWarnings(valid.raw, resolve);
  if (problems.length > 0) return fail(problems, warnings);
  let cfg: Config;
  try {
    cfg = parseConfig(text, file);
  } catch (err) {
    // Whatever the loader refuses that the checks above did not name (e.g. password and passwordFile).
    return fail([errorMessage(err).replace(/^config: /, '')], warnings);
  }
  return { file, ok: true, problems: [], warnings, roles: describeRoles(cfg) };
}

export function renderConfigCheck(c: ConfigCheck): string {
  const lines = [`${c.file}: ok`];
  for (const [role, what] of Object.entries(c.roles)) lines.push(`  ${role.padEnd(9)} ${what}`);
  for (const w of c.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n') + '\n';
}
