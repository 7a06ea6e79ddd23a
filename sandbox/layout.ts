import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../core/config';
import { ZkmhaError } from '../core/errors';

/**
 * Where the sandbox keeps everything (one directory, `.sandbox/` in the repository unless
 * ZKMHA_SANDBOX_DIR says otherwise), which ports it uses, and the state file that records what it
 * started. Pure apart from the small file helpers at the end.
 */
export const GROUP = 'demo';
export const NODE_NAMES = ['n1', 'n2', 'n3'] as const;
export const SERVER_IDS = ['s1', 's2'] as const;
export const ROUTER_ID = 'r1';
export const DEFAULT_PORT_BASE = 23300;

export interface PortPlan {
  readonly base: number;
  readonly write: number;
  readonly read: number;
  readonly zookeeper: number;
  /** mariadbd ports of n1..n3. */
  readonly mysql: readonly number[];
  /** Heartbeat clients' HTTP ports (GET /master, /replica, /metrics) of n1..n3. */
  readonly agentHttp: readonly number[];
}

/** The ports used for a base: write base+6, read base+7, mariadbd base+11.., agents base+21.., ZooKeeper base+81. */
export function portPlan(base: number): PortPlan {
  if (!Number.isInteger(base) || base < 1024 || base > 65535 - 100)
    throw new ZkmhaError('BAD_USAGE', `--port-base must be an integer from 1024 to ${65535 - 100}`);
  return {
    base,
    write: base + 6,
    read: base + 7,
    zookeeper: base + 81,
    mysql: NODE_NAMES.map((_, i) => base + 11 + i),
    agentHttp: NODE_NAMES.map((_, i) => base + 21 + i),
  };
}

/** `mha web`'s status page: base+8 (derived from the base, so older state files still read). */
export function webPort(base: number): number {
  return base + 8;
}

export function allPorts(p: PortPlan): number[] {
  return [p.write, p.read, webPort(p.base), p.zookeeper, ...p.mysql, ...p.agentHttp];
}

export type PortChoice =
  | { readonly kind: 'ok'; readonly plan: PortPlan }
  | {
      readonly kind: 'busy';
      readonly tried: readonly { readonly base: number; readonly busy: readonly number[] }[];
    };

/**
 * The first plan whose ports are all free: the given base only (when the user chose it), else the
 * default base and then up to `attempts - 1` further bases 100 apart.
 */
export async function choosePortPlan(
  isFree: (port: number) => Promise<boolean>,
  explicitBase?: number,
  attempts = 10,
): Promise<PortChoice> {
  const bases =
    explicitBase !== undefined
      ? [explicitBase]
      : Array.from({ length: attempts }, (_, i) => DEFAULT_PORT_BASE + 100 * i);
  const tried: { base: number; busy: number[] }[] = [];
  for (const base of bases) {
    const plan = portPlan(base);
    const busy: number[] = [];
    for (const p of allPorts(plan)) if (!(await isFree(p))) busy.push(p);
    if (busy.length === 0) return { kind: 'ok', plan };
    tried.push({ base, busy });
  }
  return { kind: 'busy', tried };
}

export interface SandboxLayout {
  readonly dir: string;
  readonly stateFile: string;
  readonly confDir: string;
  readonly secretsDir: string;
  readonly logDir: string;
  readonly cacheDir: string;
  readonly zkDir: string;
  /** `<dir>/mysql/<n>` per node. */
  nodeDir(name: string): string;
  readonly haproxy: {
    readonly dir: string;
    readonly config: string;
    readonly masterSocket: string;
    readonly adminSocket: string;
    readonly stateDir: string;
    readonly pidFile: string;
  };
  /** Config file for the admin CLI (MHA_CONFIG of the `mha` wrapper). */
  readonly cliConfig: string;
  /** `mariadb` client option files (0600). */
  readonly appCnf: string;
  readonly adminCnf: string;
  /** `<dir>/mha`: runs the CLI with the sandbox's config. */
  readonly mhaWrapper: string;
  logFile(proc: string): string;
  configFile(proc: string): string;
}

export function sandboxDir(): string {
  return path.resolve(process.env.ZKMHA_SANDBOX_DIR ?? path.join(PACKAGE_ROOT, '.sandbox'));
}

export function sandboxLayout(dir: string = sandboxDir()): SandboxLayout {
  const hp = path.join(dir, 'haproxy');
  return {
    dir,
    stateFile: path.join(dir, 'state.json'),
    confDir: path.join(dir, 'conf'),
    secretsDir: path.join(dir, 'secrets'),
    logDir: path.join(dir, 'logs'),
    cacheDir: path.join(dir, 'cache'),
    zkDir: path.join(dir, 'zookeeper'),
    nodeDir: (name) => path.join(dir, 'mysql', name),
    haproxy: {
      dir: hp,
      config: path.join(hp, 'haproxy.cfg'),
      masterSocket: path.join(hp, 'master.sock'),
      adminSocket: path.join(hp, 'admin.sock'),
      stateDir: path.join(hp, 'state'),
      pidFile: path.join(hp, 'state', 'haproxy.pid'),
    },
    cliConfig: path.join(dir, 'conf', 'mha.yaml'),
    appCnf: path.join(dir, 'app.cnf'),
    adminCnf: path.join(dir, 'admin.cnf'),
    mhaWrapper: path.join(dir, 'mha'),
    logFile: (proc) => path.join(dir, 'logs', `${proc}.log`),
    configFile: (proc) => path.join(dir, 'conf', `${proc}.yaml`),
  };
}

// ---------------------------------------------------------------------------------------------
// State file: what `up` started, so `down` stops exactly that.

const procRefSchema = z
  .object({ pid: z.number().int().positive(), startTime: z.number().int().nonnegative() })
  .strict();

const nodeSchema = z
  .object({
    name: z.string(),
    node: z.string(),
    port: z.number().int(),
    serverId: z.number().int().positive(),
    httpPort: z.number().int(),
  })
  .strict();

export const stateSchema = z
  .object({
    v: z.literal(1),
    createdAt: z.number(),
    dir: z.string(),
    ports: z
      .object({
        base: z.number().int(),
        write: z.number().int(),
        read: z.number().int(),
        zookeeper: z.number().int(),
        mysql: z.array(z.number().int()),
        agentHttp: z.array(z.number().int()),
      })
      .strict(),
    nodes: z.array(nodeSchema),
    /** Process name → identity. Names: zookeeper, mariadb-<n>, client-<n>, server-<id>, router, haproxy. */
    procs: z.record(procRefSchema),
    /** Set once `up` completed. */
    ready: z.boolean(),
  })
  .strict();
export type SandboxState = z.infer<typeof stateSchema>;
export type SandboxNode = SandboxState['nodes'][number];

export function nodesFor(plan: PortPlan): SandboxNode[] {
  return NODE_NAMES.map((name, i) => ({
    name,
    node: `127.0.0.1:${plan.mysql[i]!}`,
    port: plan.mysql[i]!,
    serverId: i + 1,
    httpPort: plan.agentHttp[i]!,
  }));
}

/** A node by short name (n1), node name (127.0.0.1:23311) or port (23311). */
export function findNode(state: SandboxState, arg: string): SandboxNode | undefined {
  return state.nodes.find((n) => n.name === arg || n.node === arg || String(n.port) === arg);
}

export function readState(file: string): SandboxState | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ZkmhaError('BAD_RECORD', `sandbox: ${file} is not valid JSON`);
  }
  const r = stateSchema.safeParse(doc);
  if (!r.success)
    throw new ZkmhaError(
      'BAD_RECORD',
      `sandbox: ${file} is damaged (${r.error.issues[0]?.message ?? 'invalid'})`,
    );
  return r.data;
}

export function writeState(file: string, state: SandboxState): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}
