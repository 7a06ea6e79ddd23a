import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawnMha } from '../devenv/cli';
import {
  haproxyDir,
  removeHaproxyDir,
  routerSection,
  startGreeter,
  stopHaproxyAt,
  trackRouterHaproxy,
  type GreeterServer,
} from '../devenv/haproxy';
import { startReadLoop, startRouterWorld, type ReadLoop, type RouterWorld } from '../devenv/router';
import { median } from '../devenv/traffic';
import { waitFor } from '../devenv/wait';

/**
 * `npm run bench:router`: how fast HAProxy follows `haproxy/<group>`, with the router agent in its
 * own process (`mha router --config F`) and a real HAProxy, ZooKeeper and MariaDB on this machine.
 *
 *  - runtime path: `haproxy/<g>.write` moves between three backends BENCH_RUNS times (default 30);
 *    time from just before the ZooKeeper write until a new TCP connection to the write port is
 *    answered by the new backend (tiny greeting servers, so the backend is known from the first
 *    bytes; a connection is probed every few hundred microseconds);
 *  - reload path: a new group is registered BENCH_RELOADS times (default 5); time until its write
 *    port answers (listener added by a validated, confirmed, seamless reload);
 *  - failed reads: a client loops short read queries (a new MariaDB connection each, SELECT
 *    @@port) on a group's read port throughout both sequences, while its read pool changes too.
 * Target: runtime path under 50 ms median, zero failed reads. JSON goes to .bench/router.json.
 */
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const RELOADS = Number(process.env.BENCH_RELOADS ?? 5);

const pct = (xs: readonly number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
const fmt = (ms: number): string => ms.toFixed(1).padStart(7);

/** One TCP connection: the greeting, or null when refused/closed without data. */
function greet(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.createConnection({ host: '127.0.0.1', port });
    let done = false;
    const end = (v: string | null): void => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(v);
    };
    s.setTimeout(2000, () => end(null));
    s.on('data', (d: Buffer) => end(d.toString()));
    s.on('error', () => end(null));
    s.on('close', () => end(null));
  });
}

/** Probes until the port greets with `want`; returns the time of that connection's start. */
async function until(port: number, want: string, timeoutMs = 10_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const t = performance.now();
    if ((await greet(port)) === want) return t;
    if (performance.now() > deadline) throw new Error(`port ${port} never answered '${want.trim()}'`);
  }
}

async function main(): Promise<void> {
  const w: RouterWorld = await startRouterWorld({ nodes: 3 });
  const greeters: GreeterServer[] = [];
  const hp = haproxyDir('zkmha-bench-router-');
  let child: ChildProcess | null = null;
  let loop: ReadLoop | null = null;
  try {
    for (const name of ['a', 'b', 'c']) greeters.push(await startGreeter(name));
    const gnodes = greeters.map((g) => `127.0.0.1:${g.port}`);
    const members = [...gnodes, ...w.nodes];
    const n = w.nodes;
    const wg = await w.addGroup('wbench', { epoch: 1, write: gnodes[0]!, read: [n[1]!, n[2]!] }, members);

    const cfg = path.join(hp.dir, 'mha.yaml');
    fs.writeFileSync(
      cfg,
      [
        `zookeeper: { hosts: "${w.zk.connectString}", root: /mha, sessionTimeoutMs: 4000 }`,
        ...routerSection('bench', hp),
        'log: { level: info }',
        '',
      ].join('\n'),
    );
    const logFile = path.join(hp.dir, 'router.log');
    child = spawnMha(['router', '--config', cfg], logFile);
    await trackRouterHaproxy(hp);
    await until(wg.writePort, 'hello a\n');
    await waitFor(async () => (await w.zkc.exists(w.paths.metaRouter('bench'))) !== null, {
      timeoutMs: 10_000,
      what: 'router ready',
    });

    loop = startReadLoop(wg.readPort);
    await waitFor(() => loop!.ok >= 20, { timeoutMs: 10_000, what: 'read loop running' });

    // Runtime path.
    const runtime: number[] = [];
    let epoch = 1;
    const readPools = [[n[1]!, n[2]!], [n[2]!], [n[2]!, n[0]!], [n[0]!, n[1]!, n[2]!], [n[1]!]];
    for (let i = 0; i < RUNS; i++) {
      const target = (i + 1) % greeters.length;
      epoch++;
      const read = readPools[i % readPools.length]!;
      const t0 = performance.now();
      await w.setRoute('wbench', { epoch, write: gnodes[target]!, read });
      const t1 = await until(wg.writePort, `hello ${greeters[target]!.name}\n`);
      runtime.push(t1 - t0);
    }

    // Reload path.
    const reload: number[] = [];
    for (let i = 0; i < RELOADS; i++) {
      const name = `rbench${i}`;
      const t0 = performance.now();
      const g = await w.addGroup(name, { epoch: 1, write: gnodes[0]!, read: [] }, members);
      const t1 = await until(g.writePort, 'hello a\n');
      reload.push(t1 - t0);
      await w.removeGroup(name);
      await waitFor(async () => (await greet(g.writePort)) === null, {
        timeoutMs: 10_000,
        what: `${name} removed`,
      });
    }
    await loop.stop();

    const result = {
      runtime: {
        runs: runtime.length,
        medianMs: median(runtime),
        p90Ms: pct(runtime, 90),
        maxMs: Math.max(...runtime),
        samples: runtime,
      },
      reload: { runs: reload.length, medianMs: median(reload), maxMs: Math.max(...reload), samples: reload },
      reads: { ok: loop.ok, failed: loop.failed, errors: loop.errors },
    };
    console.log('zkmha router benchmark (ZooKeeper change → HAProxy routes new connections), ms');
    console.log(`                      runs  median     p90     max`);
    console.log(
      `runtime path (write) ${String(runtime.length).padStart(5)} ${fmt(result.runtime.medianMs)} ${fmt(result.runtime.p90Ms)} ${fmt(result.runtime.maxMs)}`,
    );
    console.log(
      `reload path (group)  ${String(reload.length).padStart(5)} ${fmt(result.reload.medianMs)} ${fmt(pct(reload, 90))} ${fmt(result.reload.maxMs)}`,
    );
    console.log(
      `reads during the changes: ${loop.ok} ok, ${loop.failed} failed${loop.failed > 0 ? ` (${loop.errors.join(', ')})` : ''}`,
    );
    console.log(
      `target: runtime median < 50 ms (${result.runtime.medianMs < 50 ? 'met' : 'NOT met'}), zero failed reads (${loop.failed === 0 ? 'met' : 'NOT met'})`,
    );
    const out = path.resolve(__dirname, '..', '..', '.bench');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'router.json'), `${JSON.stringify(result, null, 1)}\n`);
    if (loop.failed > 0) process.exitCode = 1;
  } finally {
    await loop?.stop();
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    await stopHaproxyAt(hp).catch(() => undefined);
    removeHaproxyDir(hp);
    for (const g of greeters) await g.close();
    await w.close();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:router failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
