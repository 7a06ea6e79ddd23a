import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDelayProxy, type DelayProxy } from './delay-proxy';

/**
 * Network faults between the processes of one machine (issue 11), without leaving loopback.
 *
 * Each "host" of a scenario (a heartbeat client; the server workers; the router with its HAProxy;
 * the test's own observer) runs in its own cgroup v2 under one per-run parent cgroup; nft rules in
 * a per-run table match the cgroup of the local socket (`socket cgroupv2`) and the ports a host
 * serves, so a partition is a silent DROP between exactly the processes named — like a cut cable:
 * connects time out, open connections stall — and healing is deleting the rules. The cgroup is
 * inherited at spawn (`spawnIn`), so a process's every socket belongs to its host from the start.
 * mysqld processes stay in the root cgroup: they are cut by the ports they serve.
 *
 * Field notes (this machine): no `tc netem`, so loss is nft `numgen random` and delay a proxy
 * (delay()). Each fault is its own pair of base chains (output and input hooks), so faults overlap
 * and heal independently. Everything is removed by close(), and by the reaper's exit if a test
 * dies (the table and cgroups carry the run's name).
 */
const CGROUP2 = '/sys/fs/cgroup/unified';
/** nft resolves a cgroupv2 path relative to /sys/fs/cgroup. */
const NFT_CGROUP_BASE = '/sys/fs/cgroup';

export interface Fault {
  readonly name: string;
  heal(): Promise<void>;
}

function nft(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('nft', ['-f', '-'], (err, _out, stderr) => {
      if (err) reject(new Error(`nft failed: ${stderr.trim() || err.message}\n${script}`));
      else resolve();
    });
    child.stdin?.end(script);
  });
}

function currentCgroup(pid: number | 'self' = 'self'): string {
  const line = fs
    .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  return line === undefined ? '/' : line.slice(3);
}

export class FaultNet {
  readonly id: string;
  readonly table: string;
  private readonly dir: string;
  private readonly home: string;
  private readonly hosts = new Set<string>();
  private faults = 0;
  private readonly active = new Map<string, string[]>();
  private readonly proxies: DelayProxy[] = [];

  private constructor() {
    this.id = randomBytes(3).toString('hex');
    this.table = `zkmha_faults_${this.id}`;
    this.dir = path.join(CGROUP2, `zkmha-faults-${this.id}`);
    this.home = path.join(CGROUP2, currentCgroup());
  }

  /** Needs root, cgroup v2 at /sys/fs/cgroup/unified and nft (scripts/ensure-deps.sh). */
  static async create(): Promise<FaultNet> {
    const net = new FaultNet();
    fs.mkdirSync(net.dir);
    await nft(`table inet ${net.table} {\n}\n`);
    return net;
  }

  /** The nft expression matching sockets of `host`. */
  private match(host: string): string {
    this.ensureHost(host);
    const rel = path.relative(NFT_CGROUP_BASE, path.join(this.dir, host));
    return `socket cgroupv2 level ${rel.split('/').length - 1} "${rel}"`;
  }

  private ensureHost(host: string): string {
    if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(host)) throw new Error(`bad host name ${host}`);
    const p = path.join(this.dir, host);
    if (!this.hosts.has(host)) {
      fs.mkdirSync(p, { recursive: true });
      this.hosts.add(host);
    }
    return p;
  }

  /** Moves a running process into `host` (sockets it opens from now on belong to the host). */
  move(pid: number, host: string): void {
    fs.writeFileSync(path.join(this.ensureHost(host), 'cgroup.procs'), String(pid));
  }

  /**
   * Runs `spawn` (which must start its child synchronously) with this process inside `host`, so
   * the child is born there, then returns home. JavaScript is single-threaded: no socket of ours
   * is created in between.
   */
  spawnIn<T>(host: string, spawn: () => T): T {
    const back = currentCgroup();
    this.move(process.pid, host);
    try {
      return spawn();
    } finally {
      fs.writeFileSync(path.join(CGROUP2, back, 'cgroup.procs'), String(process.pid));
    }
  }

  /** Pids of the processes in `host` now (the test process excluded). */
  pids(host: string): number[] {
    return fs
      .readFileSync(path.join(this.ensureHost(host), 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number)
      .filter((pid) => pid !== process.pid);
  }

  /** Moves the test process itself into `host` (e.g. the observer), until close(). */
  enter(host: string): void {
    this.move(process.pid, host);
  }

  private async add(name: string, outRules: string[], inRules: string[]): Promise<Fault> {
    const n = ++this.faults;
    const chains = [`f${n}_out`, `f${n}_in`];
    await nft(
      [
        `table inet ${this.table} {`,
        `  chain f${n}_out {`,
        '    type filter hook output priority 0; policy accept;',
        ...outRules.map((r) => `    ${r}`),
        '  }',
        `  chain f${n}_in {`,
        '    type filter hook input priority 0; policy accept;',
        ...inRules.map((r) => `    ${r}`),
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    this.active.set(name, chains);
    return {
      name,
      heal: async () => {
        if (!this.active.has(name)) return;
        this.active.delete(name);
        await nft(chains.map((c) => `delete chain inet ${this.table} ${c}`).join('\n') + '\n');
      },
    };
  }

  /** Silent DROP between `host`'s sockets and `ports` (both directions; other traffic flows). */
  cut(host: string, ports: readonly number[], name = `cut ${host} from ${ports.join(',')}`): Promise<Fault> {
    const set = `{ ${ports.join(', ')} }`;
    const m = this.match(host);
    return this.add(name, [`${m} tcp dport ${set} drop`], [`${m} tcp sport ${set} drop`]);
  }

  /**
   * Cuts `host` (its processes and the `ports` it serves, e.g. its mysqld) off from everything
   * but itself and the `except` hosts (the observer: the checker must still see the truth).
   */
  isolate(host: string, ports: readonly number[], except: readonly string[] = []): Promise<Fault> {
    const set = `{ ${ports.join(', ')} }`;
    const m = this.match(host);
    const exempt = [host, ...except].map((h) => this.match(h));
    return this.add(
      `isolate ${host}`,
      [
        `${m} tcp dport != ${set} drop`,
        ...exempt.map((e) => `tcp dport ${set} ${e} accept`),
        `tcp dport ${set} drop`,
      ],
      [
        `${m} tcp sport != ${set} drop`,
        ...exempt.map((e) => `tcp sport ${set} ${e} accept`),
        `tcp sport ${set} drop`,
      ],
    );
  }

  /** Random loss of `percent` % of the packets between `host` and `ports` (no tc netem here). */
  loss(host: string, ports: readonly number[], percent: number): Promise<Fault> {
    const set = `{ ${ports.join(', ')} }`;
    const m = this.match(host);
    const p = Math.max(0, Math.min(100, Math.round(percent)));
    return this.add(
      `loss ${p}% ${host}`,
      [`${m} tcp dport ${set} numgen random mod 100 < ${p} drop`],
      [`${m} tcp sport ${set} numgen random mod 100 < ${p} drop`],
    );
  }

  /**
   * Delay of `ms` each way between `host` and `ports` (no tc netem: field notes). An nft redirect
   * steers the host's new connections to those ports into a delaying proxy run by this process
   * (test/env/delay-proxy.ts; this process is another host, so the proxy's own connections are
   * not redirected), and the host's connections opened before are reset once, so that its
   * clients reconnect — through the proxy — as they would after a network blip. Healing removes
   * the redirect (new connections go direct) and sets the proxies' delay to 0.
   */
  async delay(
    host: string,
    ports: readonly number[],
    ms: number,
  ): Promise<Fault & { connections(): number }> {
    const m = this.match(host);
    const proxies = await Promise.all(ports.map((p) => startDelayProxy(p, ms)));
    this.proxies.push(...proxies);
    const n = ++this.faults;
    const chains = [`f${n}_nat`, `f${n}_out`];
    const set = `{ ${ports.join(', ')} }`;
    await nft(
      [
        `table inet ${this.table} {`,
        `  chain f${n}_nat {`,
        '    type nat hook output priority -100; policy accept;',
        ...ports.map((p, i) => `    ${m} tcp dport ${p} redirect to :${proxies[i]!.port}`),
        '  }',
        `  chain f${n}_out {`,
        '    type filter hook output priority 0; policy accept;',
        `    ${m} tcp dport ${set} ct status != dnat reject with tcp reset`,
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    const name = `delay ${ms}ms ${host} to ${ports.join(',')}`;
    this.active.set(name, chains);
    return {
      name,
      connections: () => proxies.reduce((n, p) => n + p.connections, 0),
      heal: async () => {
        for (const p of proxies) p.delayMs = 0;
        if (!this.active.has(name)) return;
        this.active.delete(name);
        await nft(chains.map((c) => `delete chain inet ${this.table} ${c}`).join('\n') + '\n');
      },
    };
  }

  activeFaults(): string[] {
    return [...this.active.keys()];
  }

  async healAll(): Promise<void> {
    const names = [...this.active.keys()];
    this.active.clear();
    for (const p of this.proxies) p.delayMs = 0;
    if (names.length > 0) await nft(`flush table inet ${this.table}\n`).catch(() => undefined);
    // Flushing leaves the (now empty, accepting) chains; they are removed with the table.
  }

  /** Removes the rules and the cgroups; processes still inside go back to this process's home. */
  async close(): Promise<void> {
    await nft(`delete table inet ${this.table}\n`).catch(() => undefined);
    await Promise.all(this.proxies.splice(0).map((p) => p.close()));
    for (const h of this.hosts) {
      const p = path.join(this.dir, h);
      const pids = fs.readFileSync(path.join(p, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          fs.writeFileSync(path.join(this.home, 'cgroup.procs'), pid);
        } catch {
          // gone meanwhile
        }
      }
      fs.rmdirSync(p);
    }
    this.hosts.clear();
    fs.rmdirSync(this.dir);
  }
}
