import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Connection } from 'mysql2/promise';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { haproxyRun, showProc, showServersState } from '../../core/haproxy/cli';
import { decodeRecord, metaRouterSchema } from '../../core/records';
import type { RouterAgent } from '../../router/agent';
import { observedSlots } from '../../router/plan';
import {
  haproxyDir,
  removeHaproxyDir,
  routerSection,
  startHaproxyAt,
  stopHaproxyAt,
  trackRouterHaproxy,
  type HaproxyPaths,
} from '../../devenv/haproxy';
import { spawnMha } from '../../devenv/cli';
import {
  appConnect,
  portOf,
  startReadLoop,
  startRouterWorld,
  whoAnswers,
  type RouterWorld,
} from '../../devenv/router';
import { waitFor } from '../../devenv/wait';

/**
 * Given one group of three MariaDB servers behind a router agent and its HAProxy, when
 * `haproxy/<group>` changes, then HAProxy routes accordingly: new write connections go to the new
 * master, old write connections are cut, `write: null` stops writes at once, and a client
 * looping reads never sees a failed connection, not even while a second group is added (reload).
 */
const CUT_ERRORS = new Set(['PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE']);

/** The master's reload count; the master CLI is briefly away while the master re-executes. */
function reloads(hp: HaproxyPaths): Promise<number> {
  return waitFor(async () => (await showProc(hp.masterSocket)).master.reloads + 1, {
    timeoutMs: 5000,
    what: 'master CLI',
  }).then((r) => r - 1);
}

async function port(conn: Connection): Promise<number> {
  const [rows] = await conn.query('SELECT @@port AS p');
  return Number((rows as Array<{ p: number }>)[0]!.p);
}

/** Resolves with the error code once the connection is closed by the other side. */
function closedBy(conn: Connection): Promise<string> {
  return new Promise((resolve) => {
    conn.once('error', (err: { code?: string }) => resolve(err.code ?? 'error'));
    conn.once('end', () => resolve('end'));
  });
}

describe('router: HAProxy follows haproxy/<group>', () => {
  let w: RouterWorld;
  let agent: RouterAgent;
  let hp: HaproxyPaths;
  let n: readonly string[];
  let g1: { writePort: number; readPort: number };

  before(async () => {
    w = await startRouterWorld({ nodes: 3 });
    n = w.nodes;
    g1 = await w.addGroup('g1', { epoch: 1, write: n[0]!, read: [n[1]!, n[2]!] });
    ({ agent, hp } = await w.startRouter('r1'));
    await waitFor(async () => (await whoAnswers(g1.writePort)) === portOf(n[0]!), {
      timeoutMs: 10_000,
      what: 'g1 write routed to n0',
    });
  });

  after(async () => {
    await w?.close();
  });

  it('starts HAProxy itself and reports the applied epoch in meta_router/<id>', async () => {
    const rec = await waitFor(
      async () => {
        const nd = await w.zkc.getOrNull(w.paths.metaRouter('r1'));
        const r = nd ? decodeRecord(metaRouterSchema, nd.data, 'meta_router/r1') : null;
        return r?.applied.g1 === 1 ? r : null;
      },
      { timeoutMs: 5000, what: 'meta_router/r1 applied g1=1' },
    );
    assert.equal(rec.host, 'host-r1');
    assert.equal(rec.lastError, undefined);
    const reads = new Set([await whoAnswers(g1.readPort), await whoAnswers(g1.readPort)]);
    assert.deepEqual(reads, new Set([portOf(n[1]!), portOf(n[2]!)]));
  });

  it('a new write target gets new connections; an open connection to the old one is closed', async () => {
    const old = await appConnect(g1.writePort);
    try {
      assert.equal(await port(old), portOf(n[0]!));
      const cut = closedBy(old);
      const reloadsBefore = await reloads(hp);
      await w.setRoute('g1', { epoch: 2, write: n[1]!, read: [n[2]!] });
      await waitFor(async () => (await whoAnswers(g1.writePort)) === portOf(n[1]!), {
        timeoutMs: 5000,
        what: 'g1 write routed to n1',
      });
      assert.ok(CUT_ERRORS.has(await cut) || (await cut) === 'end', 'the old write connection was closed');
      await assert.rejects(old.query('SELECT 1'));
      assert.equal(await reloads(hp), reloadsBefore, 'runtime path: no reload');
    } finally {
      old.destroy();
    }
  });

  it('write: null refuses or closes write connections at once and cuts open ones', async () => {
    const open = await appConnect(g1.writePort);
    try {
      assert.equal(await port(open), portOf(n[1]!));
      const cut = closedBy(open);
      await w.setRoute('g1', { epoch: 3, write: null, read: [n[2]!] });
      await cut;
      await waitFor(async () => CUT_ERRORS.has(String(await whoAnswers(g1.writePort))), {
        timeoutMs: 5000,
        what: 'write port refuses',
      });
      // Still refused on the next attempts (not a timeout: closed by HAProxy at once).
      for (let i = 0; i < 3; i++) assert.ok(CUT_ERRORS.has(String(await whoAnswers(g1.writePort))));
      assert.equal(await whoAnswers(g1.readPort), portOf(n[2]!), 'reads go on');
      assert.deepEqual(
        agent.status().applied.map((g) => [g.name, g.epoch, g.write]),
        [['g1', 3, null]],
      );
    } finally {
      open.destroy();
    }
  });

  it('a looping reader sees zero failed connections while replicas are removed and added and a group is added (reload)', async () => {
    await w.setRoute('g1', { epoch: 3, write: n[0]!, read: [n[1]!, n[2]!] });
    await waitFor(async () => (await whoAnswers(g1.writePort)) === portOf(n[0]!), {
      timeoutMs: 5000,
      what: 'g1 write back on n0',
    });
    const loop = startReadLoop(g1.readPort);
    const longLived = await appConnect(g1.readPort);
    const longPort = await port(longLived);
    const reloadsBefore = await reloads(hp);
    try {
      const expectOnly = async (nodes: string[], what: string) => {
        const want = new Set(nodes.map(portOf));
        await waitFor(
          async () => {
            // Applied: then only `nodes` may answer from now on, and each of them does.
            const st = agent.status().applied.find((g) => g.name === 'g1');
            const applied = new Set(st?.read.filter((s) => s !== null).map((s) => s!.port));
            if ([...want].some((p) => !applied.has(p)) || applied.size !== want.size) return false;
            loop.mark();
            await waitFor(
              () =>
                loop.seenSinceMark().size >= want.size && [...want].every((p) => loop.seenSinceMark().has(p)),
              {
                timeoutMs: 5000,
                what: `${what}: reads on every node`,
              },
            );
            return [...loop.seenSinceMark().keys()].every((p) => want.has(p));
          },
          { timeoutMs: 10_000, what },
        );
      };
      await expectOnly([n[1]!, n[2]!], 'reads on n1, n2');
      await w.setRoute('g1', { epoch: 3, write: n[0]!, read: [n[2]!] });
      await expectOnly([n[2]!], 'n1 removed');
      await w.setRoute('g1', { epoch: 3, write: n[0]!, read: [n[2]!, n[0]!] });
      await expectOnly([n[2]!, n[0]!], 'n0 added');
      await w.setRoute('g1', { epoch: 3, write: n[0]!, read: [n[1]!] });
      await expectOnly([n[1]!], 'pool replaced by n1');
      await w.setRoute('g1', { epoch: 3, write: n[0]!, read: [n[1]!, n[2]!] });
      await expectOnly([n[1]!, n[2]!], 'n2 back');
      assert.equal(await reloads(hp), reloadsBefore, 'read-pool changes need no reload');

      const g2 = await w.addGroup('g2', { epoch: 1, write: n[2]!, read: [n[0]!] });
      await waitFor(async () => (await whoAnswers(g2.writePort)) === portOf(n[2]!), {
        timeoutMs: 10_000,
        what: 'g2 routed',
      });
      await waitFor(() => agent.status().applied.length === 2, { timeoutMs: 5000, what: 'reload confirmed' });
      assert.equal(await reloads(hp), reloadsBefore + 1, 'a new group is one reload');
      loop.mark();
      await waitFor(() => loop.seenSinceMark().size === 2, {
        timeoutMs: 5000,
        what: 'reads after the reload',
      });
      assert.equal(await port(longLived), longPort, 'an open read connection survives the reload');
    } finally {
      await loop.stop();
      longLived.destroy();
    }
    assert.equal(loop.failed, 0, `failed reads: ${loop.errors.join(', ')}`);
    assert.ok(loop.ok > 20, `reads done: ${loop.ok}`);
  });

  it('a write connection left on an old worker by a reload is cut too when the write target moves', async () => {
    const old = await appConnect(g1.writePort);
    try {
      assert.equal(await port(old), portOf(n[0]!));
      const before = await reloads(hp);
      const g4 = await w.addGroup('g4', { epoch: 1, write: n[1]!, read: [] });
      await waitFor(async () => (await whoAnswers(g4.writePort)) === portOf(n[1]!), {
        timeoutMs: 10_000,
        what: 'g4 routed (reload)',
      });
      assert.equal(await reloads(hp), before + 1);
      const workers = await waitFor(
        async () =>
          (await showProc(hp.masterSocket)).workers.length >= 2
            ? (await showProc(hp.masterSocket)).workers
            : null,
        {
          timeoutMs: 5000,
          what: 'the old worker still holds the open connection',
        },
      );
      assert.ok(workers.length >= 2);
      assert.equal(await port(old), portOf(n[0]!), 'the connection survived the reload on the old worker');
      const cut = closedBy(old);
      await w.setRoute('g1', { epoch: 4, write: n[2]!, read: [n[1]!, n[2]!] });
      await cut;
      await waitFor(async () => (await whoAnswers(g1.writePort)) === portOf(n[2]!), {
        timeoutMs: 5000,
        what: 'g1 write on n2',
      });
      await w.removeGroup('g4');
    } finally {
      old.destroy();
    }
  });

  it('a route change updates only its own group at once; drift in another group is repaired by the periodic full reconcile', async () => {
    // Someone puts g2's read server r1 into maintenance by hand: nothing in ZooKeeper changed.
    const drifted = async (): Promise<boolean> =>
      (await showServersState(hp.adminSocket)).some(
        (s) => s.backend === 'g2_read' && s.server === 'r1' && s.maint,
      );
    assert.equal(await drifted(), false, 'g2_read/r1 serves before the test');
    await haproxyRun(hp.adminSocket, ['set server g2_read/r1 state maint']);
    assert.equal(await drifted(), true);
    // An event for g1 (its read pool shrinks to n1) takes the targeted path: g1's backends only...
    await w.setRoute('g1', { epoch: 4, write: n[2]!, read: [n[1]!] });
    await waitFor(
      async () => {
        const slots = observedSlots(await showServersState(hp.adminSocket), 'g1_read');
        const serving = [...slots.values()].filter((s) => s !== null).map((s) => s.port);
        return serving.length === 1 && serving[0] === portOf(n[1]!);
      },
      { timeoutMs: 5000, what: 'g1 read pool is n1 alone' },
    );
    // ...and the timer's full reconcile still compares every group with what HAProxy runs.
    await waitFor(async () => !(await drifted()), { timeoutMs: 5000, what: 'g2_read/r1 back in service' });
  });

  it('removing a group removes its listeners (reload); the other group keeps serving', async () => {
    const g2 = w.ports('g2');
    await w.removeGroup('g2');
    await waitFor(async () => (await whoAnswers(g2.writePort)) === 'ECONNREFUSED', {
      timeoutMs: 10_000,
      what: 'g2 listeners gone',
    });
    assert.equal(await whoAnswers(g1.writePort), portOf(n[2]!));
    await waitFor(() => agent.status().applied.length === 1, { timeoutMs: 5000, what: 'reload confirmed' });
    assert.deepEqual(
      agent.status().applied.map((g) => g.name),
      ['g1'],
    );
  });

  it('the configuration file holds the runtime state: HAProxy restarted from it alone comes back identical', async () => {
    // A read-pool change at runtime (no reload), then the file must already say the same.
    await w.setRoute('g1', { epoch: 4, write: n[2]!, read: [n[0]!, n[2]!] });
    await waitFor(
      () => {
        const nodes =
          agent
            .status()
            .applied[0]?.read.filter((s) => s !== null)
            .map((s) => s!.node) ?? [];
        return nodes.length === 2 && nodes.includes(n[0]!) && nodes.includes(n[2]!);
      },
      { timeoutMs: 5000, what: 'read pool n0, n2 applied' },
    );
    const state = async () =>
      (await showServersState(hp.adminSocket)).filter((s) => s.backend.startsWith('g1_'));
    const slots = async () =>
      (await state()).map((s) =>
        s.maint ? `${s.backend}/${s.server} maint` : `${s.backend}/${s.server} ${s.addr}:${s.port}`,
      );
    const before = await slots();
    // The router writes the file in the background (validated); wait until every slot is there.
    const lines = (await state()).map(
      (s) => `    server ${s.server} ${s.maint ? '127.0.0.1:1 check disabled' : `${s.addr}:${s.port} check`}`,
    );
    await waitFor(
      () => {
        const text = fs.readFileSync(hp.haproxyConfig, 'utf8').split('# group g1:')[1] ?? '';
        return lines.every((l) => text.includes(`${l}\n`) || text.includes(`${l} #`));
      },
      { timeoutMs: 5000, what: 'file holds the runtime state' },
    );
    await agent.stop();
    await stopHaproxyAt(hp);
    await startHaproxyAt(hp);
    assert.deepEqual(await waitFor(() => slots(), { timeoutMs: 5000, what: 'admin socket' }), before);
    assert.equal(await whoAnswers(g1.writePort), portOf(n[2]!));
    ({ agent } = await w.startRouter('r1', hp));
  });

  it('`mha router --config F` runs as a daemon: JSON logs, routes, stops on SIGTERM leaving HAProxy serving', async () => {
    const hp3 = haproxyDir();
    const cfg = path.join(hp3.dir, 'mha.yaml');
    fs.writeFileSync(
      cfg,
      [
        `zookeeper: { hosts: "${w.zk.connectString}", root: /mha, sessionTimeoutMs: 2000 }`,
        ...routerSection('r3', hp3, { bindAddress: '127.0.0.3', reconcileIntervalMs: 500 }),
        'log: { level: info }',
        '',
      ].join('\n'),
    );
    const logFile = path.join(hp3.dir, 'router.log');
    const child = spawnMha(['router', '--config', cfg], logFile);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await trackRouterHaproxy(hp3);
      await waitFor(async () => (await whoAnswers(g1.writePort, '127.0.0.3')) === portOf(n[2]!), {
        timeoutMs: 10_000,
        what: 'r3 routes g1',
      });
      await waitFor(async () => (await w.zkc.exists(w.paths.metaRouter('r3'))) !== null, {
        timeoutMs: 5000,
        what: 'meta_router/r3',
      });
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.equal(
        await whoAnswers(g1.writePort, '127.0.0.3'),
        portOf(n[2]!),
        'HAProxy keeps serving after the router exits',
      );
      await waitFor(async () => (await w.zkc.exists(w.paths.metaRouter('r3'))) === null, {
        timeoutMs: 5000,
        what: 'meta_router/r3 gone',
      });
      const lines = fs
        .readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l !== '');
      const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
      assert.ok(
        msgs.includes('router: started HAProxy') && msgs.includes('router: stopped (HAProxy keeps serving)'),
        msgs.join(' | '),
      );
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await stopHaproxyAt(hp3);
      removeHaproxyDir(hp3);
    }
  });
});
