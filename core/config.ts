import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ZkmhaError } from './errors';
import { isNodeName, isProcessId } from './names';
import { DIGEST_RE, DIGEST_USER_RE, digestId } from './zk/acl';

/**
 * The one configuration schema (design §8). Each process reads its own section; a section a
 * process needs but the file lacks is reported by `requireSection`. Secrets are read from files
 * (refused when group/other can read them) and never appear in the returned value's JSON form.
 */
export const DEFAULT_CONFIG_PATH = '/etc/zkmha/mha.yaml';

/** Package root (holds templates/), whether running from dist/ or from source. */
export const PACKAGE_ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

const posInt = (key: string) =>
  z
    .number({ invalid_type_error: `${key} must be a positive integer`, required_error: `${key} is required` })
    .int(`${key} must be a positive integer`)
    .positive(`${key} must be a positive integer`);
const str = (key: string) =>
  z
    .string({ invalid_type_error: `${key} must be a string`, required_error: `${key} is required` })
    .min(1, `${key} must not be empty`);
const portNum = (key: string) =>
  z
    .number({ invalid_type_error: `${key} must be a port number` })
    .int(`${key} must be a port number`)
    .min(0, `${key} must be a port number`)
    .max(65535, `${key} must be a port number`);

/** One role's ZooKeeper identity for `mha init --acl`: its password file, or just its digest. */
const aclCredential = (key: string) =>
  z
    .object({
      user: str(`${key}.user`).regex(DIGEST_USER_RE, `${key}.user must be letters, digits, _ . @ -`),
      passwordFile: str(`${key}.passwordFile`).optional(),
      digest: str(`${key}.digest`)
        .regex(DIGEST_RE, `${key}.digest must be base64(sha1(user:password)), 28 characters`)
        .optional(),
    })
    .strict()
    .refine((c) => (c.passwordFile === undefined) !== (c.digest === undefined), {
      message: `${key}: give passwordFile or digest (one of them)`,
    });

const zookeeperSchema = z
  .object({
    hosts: str('zookeeper.hosts').regex(
      /^[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*$/,
      'zookeeper.hosts must be host:port[,host:port...]',
    ),
    root: str('zookeeper.root')
      .regex(/^(\/[A-Za-z0-9_.-]+)+$/, 'zookeeper.root must be an absolute znode path')
      .default('/mha'),
    sessionTimeoutMs: posInt('zookeeper.sessionTimeoutMs').default(4000),
    auth: z
      .object({
        user: str('zookeeper.auth.user').regex(
          DIGEST_USER_RE,
          'zookeeper.auth.user must be letters, digits, _ . @ -',
        ),
        passwordFile: str('zookeeper.auth.passwordFile'),
      })
      .strict()
      .optional(),
    /**
     * Only the admin's config: the identity of each role, which `mha init --acl` writes into the
     * ACLs (the admin itself is `auth`). Each role's own config names only its own credential.
     */
    acl: z
      .object({
        server: aclCredential('zookeeper.acl.server'),
        router: aclCredential('zookeeper.acl.router'),
        client: aclCredential('zookeeper.acl.client'),
      })
      .strict()
      .optional(),
  })
  .strict();

/**
 * TLS to every mysqld (admin connections and replication), on when the config names a CA. The
 * paths are also handed to each replica's mysqld in CHANGE MASTER, which reads them on its own
 * host: the same paths must hold the same files on every database host.
 */
const mysqlTlsSchema = z
  .object({
    ca: str('mysql.tls.ca'),
    cert: str('mysql.tls.cert').optional(),
    key: str('mysql.tls.key').optional(),
    verifyServerCert: z
      .boolean({ invalid_type_error: 'mysql.tls.verifyServerCert must be true or false' })
      .default(true),
  })
  .strict()
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: 'mysql.tls: give cert and key together, or neither',
  });

const mysqlSchema = z
  .object({
    user: str('mysql.user').default('mha'),
    password: z.string().optional(),
    passwordFile: str('mysql.passwordFile').optional(),
    replicationUser: str('mysql.replicationUser').default('repl'),
    replicationPassword: z.string().optional(),
    replicationPasswordFile: str('mysql.replicationPasswordFile').optional(),
    connectTimeoutMs: posInt('mysql.connectTimeoutMs').default(1000),
    tls: mysqlTlsSchema.optional(),
  })
  .strict();

const serverSchema = z
  .object({
    id: str('server.id').refine(isProcessId, 'server.id must be letters, digits, _ . -'),
    /** Workers run their periodic reconcile this often (besides reacting to watches). */
    reconcileIntervalMs: posInt('server.reconcileIntervalMs').default(2000),
    /** Read-pool hysteresis: a replica returns after being healthy this long without interruption. */
    readReturnAfterMs: posInt('server.readReturnAfterMs').default(2000),
    /**
     * A master whose heartbeat says read_only=ON with no operation open is made writable again (or
     * alerted on) after this long (about 2 × the clients' check interval).
     */
    readOnlyGraceMs: posInt('server.readOnlyGraceMs').default(1000),
    /** `/metrics` (Prometheus) on httpHost:httpPort; none when httpPort is not set. */
    httpPort: portNum('server.httpPort').optional(),
    httpHost: str('server.httpHost').default('127.0.0.1'),
  })
  .strict();

const clientSchema = z
  .object({
    node: str('client.node').refine(isNodeName, 'client.node must be host:port'),
    socket: str('client.socket').optional(),
    binlogDir: str('client.binlogDir').default('/var/lib/mysql'),
    dataDir: str('client.dataDir').default('/var/lib/zkmha'),
    httpPort: portNum('client.httpPort').default(8008),
    httpHost: str('client.httpHost').default('127.0.0.1'),
    checkIntervalMs: posInt('client.checkIntervalMs').default(500),
    failAfter: posInt('client.failAfter').default(3),
  })
  .strict();

const routerSchema = z
  .object({
    id: str('router.id').refine(isProcessId, 'router.id must be letters, digits, _ . -'),
    haproxyConfig: str('router.haproxyConfig').default('/etc/haproxy/haproxy.cfg'),
    template: str('router.template').default(path.join(PACKAGE_ROOT, 'templates', 'haproxy.cfg.hbs')),
    masterSocket: str('router.masterSocket').default('/run/haproxy-master.sock'),
    adminSocket: str('router.adminSocket').default('/run/haproxy.sock'),
    stateDir: str('router.stateDir').default('/var/lib/zkmha'),
    haproxyBin: str('router.haproxyBin').default('haproxy'),
    bindAddress: str('router.bindAddress').default('0.0.0.0'),
    reconcileIntervalMs: posInt('router.reconcileIntervalMs').default(3000),
    /** Server slots per read backend (the most replicas a group can route reads to). */
    readSlots: posInt('router.readSlots').max(64, 'router.readSlots must be at most 64').default(8),
    /**
     * HAProxy's health checks ask each node's agent (`/master?epoch=`, `/replica?max_lag=`, on the
     * address agent/<node> publishes). false: plain TCP checks, the router's word alone.
     */
    agentChecks: z.boolean({ invalid_type_error: 'router.agentChecks must be true or false' }).default(true),
    /** `/metrics` (Prometheus) on httpHost:httpPort; none when httpPort is not set. */
    httpPort: portNum('router.httpPort').optional(),
    httpHost: str('router.httpHost').default('127.0.0.1'),
  })
  .strict();

/** `mha web`: the read-only status page and its JSON API (loopback unless told otherwise). */
const webSchema = z
  .object({
    host: str('web.host').default('127.0.0.1'),
    port: portNum('web.port').default(8090),
    /** Read replication positions from every member (as `mha status` does), not only online/. */
    mysql: z.boolean({ invalid_type_error: 'web.mysql must be true or false' }).default(true),
  })
  .strict();

const logSchema = z
  .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
  .strict();

const configSchema = z
  .object({
    zookeeper: zookeeperSchema,
    mysql: mysqlSchema.default({}),
    server: serverSchema.optional(),
    client: clientSchema.optional(),
    router: routerSchema.optional(),
    web: webSchema.default({}),
    log: logSchema.default({}),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;

/** Secrets are kept out of JSON.stringify and util.inspect so they cannot reach a log. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '***';
  }
  toString(): string {
    return '***';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Secret(***)';
  }
}

export interface MysqlConfig {
  readonly user: string;
  readonly password: Secret;
  readonly replicationUser: string;
  readonly replicationPassword: Secret;
  readonly connectTimeoutMs: number;
  /** Absent: plain connections, and CHANGE MASTER leaves the replicas' MASTER_SSL_* as they are. */
  readonly tls?: MysqlTls;
}

/** `mysql.tls`, its files read at load (a file that cannot be read is a BAD_CONFIG at start). */
export interface MysqlTls {
  /** Absolute paths: replicas' mysqld read them on their own hosts (MASTER_SSL_CA, …). */
  readonly caFile: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  /** PEM contents, for this process's own connections. */
  readonly ca: string;
  readonly cert?: string;
  readonly key?: Secret;
  /**
   * The server's certificate must name the host connected to (the node name's host; an IP
   * subjectAltName for IPv4 node names). It must be signed by the CA either way.
   */
  readonly verifyServerCert: boolean;
}

export interface ZookeeperConfig {
  readonly hosts: string;
  readonly root: string;
  readonly sessionTimeoutMs: number;
  readonly auth?: { readonly user: string; readonly password: Secret };
  /** Digest identities (`user:digest`, no password) of each role, for `mha init --acl`. */
  readonly acl?: { readonly server: string; readonly router: string; readonly client: string };
}

export type ServerConfig = Readonly<NonNullable<RawConfig['server']>>;
export type ClientConfig = Readonly<NonNullable<RawConfig['client']>>;
export type RouterConfig = Readonly<NonNullable<RawConfig['router']>>;
export type WebConfig = Readonly<RawConfig['web']>;

export interface Config {
  readonly file: string;
  readonly zookeeper: ZookeeperConfig;
  readonly mysql: MysqlConfig;
  readonly server?: ServerConfig;
  readonly client?: ClientConfig;
  readonly router?: RouterConfig;
  /** Always set by parseConfig (defaults); optional for configs built in code. */
  readonly web?: WebConfig;
  readonly log: { readonly level: RawConfig['log']['level'] };
}

export function configPath(explicit?: string): string {
  return explicit ?? process.env.MHA_CONFIG ?? DEFAULT_CONFIG_PATH;
}

function bad(message: string): ZkmhaError {
  return new ZkmhaError('BAD_CONFIG', `config: ${message}`);
}

/** Reads a password file, refusing one that group or others can read. */
export function readPasswordFile(file: string, key: string): Secret {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw bad(`${key}: cannot read '${file}'`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw bad(
      `${key}: '${file}' is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  return new Secret(fs.readFileSync(file, 'utf8').replace(/\r?\n$/, ''));
}

function readPemFile(file: string, key: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw bad(`${key}: cannot read '${file}'${code !== undefined ? ` (${code})` : ''}`);
  }
  if (!text.includes('-----BEGIN ')) throw bad(`${key}: '${file}' is not a PEM file`);
  return text;
}

/**
 * Reads the files `mysql.tls` names (paths already absolute). The key is a secret: refused, like
 * a password file, when group or others can read it.
 */
export function readMysqlTls(t: {
  readonly ca: string;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly verifyServerCert: boolean;
}): MysqlTls {
  if ((t.cert === undefined) !== (t.key === undefined))
    throw bad('mysql.tls: give cert and key together, or neither');
  const key = t.key !== undefined ? readPasswordFile(t.key, 'mysql.tls.key') : undefined;
  if (key !== undefined && !key.reveal().includes('-----BEGIN '))
    throw bad(`mysql.tls.key: '${t.key}' is not a PEM file`);
  return {
    caFile: t.ca,
    ca: readPemFile(t.ca, 'mysql.tls.ca'),
    ...(t.cert !== undefined && t.key !== undefined && key !== undefined
      ? { certFile: t.cert, cert: readPemFile(t.cert, 'mysql.tls.cert'), keyFile: t.key, key }
      : {}),
    verifyServerCert: t.verifyServerCert,
  };
}

function issueLine(issue: z.ZodIssue): string {
  const key = issue.path.join('.');
  if (issue.code === 'unrecognized_keys')
    return `${key ? key + ': ' : ''}unknown key(s) ${issue.keys.join(', ')}`;
  // Our own messages already name the key; zod's generic ones do not.
  return key !== '' && issue.message.startsWith(key) ? issue.message : `${key || '(top)'}: ${issue.message}`;
}

/**
 * Every schema problem of a parsed YAML document, one line each (parseConfig stops at the first),
 * or the validated document with its defaults (paths not yet resolved) — for `mha config check`.
 */
export function validateConfigDocument(
  doc: unknown,
): { readonly ok: true; readonly raw: RawConfig } | { readonly ok: false; readonly problems: string[] } {
  if (doc === null || typeof doc !== 'object')
    return { ok: false, problems: ['expected a mapping with a zookeeper section'] };
  const parsed = configSchema.safeParse(doc);
  return parsed.success
    ? { ok: true, raw: parsed.data }
    : { ok: false, problems: parsed.error.issues.map(issueLine) };
}

export function parseConfig(text: string, file: string): Config {
  let doc: unknown;
  try {
    // Warnings (an unknown tag or directive) would print extra lines on stderr; the schema below
    // refuses whatever they leave behind.
    doc = parseYaml(text, { logLevel: 'error' });
  } catch (err) {
    throw bad(`${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (doc === null || typeof doc !== 'object')
    throw bad(`${file}: expected a mapping with a zookeeper section`);
  const parsed = configSchema.safeParse(doc);
  if (!parsed.success) throw bad(issueLine(parsed.error.issues[0]!));
  const raw = parsed.data;
  const dir = path.dirname(path.resolve(file));
  const resolve = (p: string) => path.resolve(dir, p);

  const secret = (
    inline: string | undefined,
    fileKey: string | undefined,
    key: string,
    required: boolean,
  ): Secret => {
    if (inline !== undefined && fileKey !== undefined)
      throw bad(`mysql: give ${key} or ${key}File, not both`);
    if (fileKey !== undefined) return readPasswordFile(resolve(fileKey), `mysql.${key}File`);
    if (inline !== undefined) return new Secret(inline);
    if (required) throw bad(`mysql.${key}File (or mysql.${key}) is required`);
    return new Secret('');
  };

  const zk = raw.zookeeper;
  const aclId = (role: 'server' | 'router' | 'client'): string => {
    const c = zk.acl![role];
    if (c.digest !== undefined) return `${c.user}:${c.digest}`;
    return digestId(c.user, readPasswordFile(resolve(c.passwordFile!), `zookeeper.acl.${role}.passwordFile`));
  };
  return {
    file,
    zookeeper: {
      hosts: zk.hosts,
      root: zk.root,
      sessionTimeoutMs: zk.sessionTimeoutMs,
      ...(zk.auth
        ? {
            auth: {
              user: zk.auth.user,
              password: readPasswordFile(resolve(zk.auth.passwordFile), 'zookeeper.auth.passwordFile'),
            },
          }
        : {}),
      ...(zk.acl
        ? { acl: { server: aclId('server'), router: aclId('router'), client: aclId('client') } }
        : {}),
    },
    mysql: {
      user: raw.mysql.user,
      password: secret(raw.mysql.password, raw.mysql.passwordFile, 'password', false),
      replicationUser: raw.mysql.replicationUser,
      replicationPassword: secret(
        raw.mysql.replicationPassword,
        raw.mysql.replicationPasswordFile,
        'replicationPassword',
        false,
      ),
      connectTimeoutMs: raw.mysql.connectTimeoutMs,
      ...(raw.mysql.tls !== undefined
        ? {
            tls: readMysqlTls({
              ca: resolve(raw.mysql.tls.ca),
              cert: raw.mysql.tls.cert !== undefined ? resolve(raw.mysql.tls.cert) : undefined,
              key: raw.mysql.tls.key !== undefined ? resolve(raw.mysql.tls.key) : undefined,
              verifyServerCert: raw.mysql.tls.verifyServerCert,
            }),
          }
        : {}),
    },
    ...(raw.server ? { server: raw.server } : {}),
    ...(raw.client
      ? {
          client: {
            ...raw.client,
            binlogDir: resolve(raw.client.binlogDir),
            dataDir: resolve(raw.client.dataDir),
            ...(raw.client.socket ? { socket: resolve(raw.client.socket) } : {}),
          },
        }
      : {}),
    ...(raw.router
      ? {
          router: {
            ...raw.router,
            haproxyConfig: resolve(raw.router.haproxyConfig),
            template: resolve(raw.router.template),
            masterSocket: resolve(raw.router.masterSocket),
            adminSocket: resolve(raw.router.adminSocket),
            stateDir: resolve(raw.router.stateDir),
          },
        }
      : {}),
    web: raw.web,
    log: raw.log,
  };
}

export function loadConfig(explicit?: string): Config {
  const file = configPath(explicit);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw bad(`cannot read '${file}' (give --config F or set MHA_CONFIG)`);
  }
  return parseConfig(text, file);
}

/** The section a process needs, or a BAD_CONFIG error naming it. */
export function requireSection<K extends 'server' | 'client' | 'router'>(
  cfg: Config,
  key: K,
): NonNullable<Config[K]> {
  const section = cfg[key];
  if (section === undefined) throw bad(`${cfg.file}: section '${key}' is required for 'mha ${key}'`);
  return section as NonNullable<Config[K]>;
}
