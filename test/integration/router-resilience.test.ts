import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { haproxyRun } from '../../core/haproxy/cli';
import { decodeRecord, metaRouterSchema, type MetaRouterRecord } from '../../core/records';
import type { RouterAgent } from '../../router/agent';
import { stopHaproxyAt, trackRouterHaproxy, type HaproxyPaths } from '../../devenv/haproxy';
import { portOf, startRouterWorld, whoAnswers, type RouterWorld } from '../../devenv/router';
import { waitFor } from '../../devenv/wait';

/**
 * Given one group and two router agents (two HAProxy "hosts": one listening on 127.0.0.1, the
 * other on 127.0.0.2), then both follow the same records independently and report the same epoch;
 * drift inside HAProxy is repaired; with ZooKeeper stopped both keep serving, a router restarted
 * meanwhile keeps HAProxy serving, and brings HAProxy back from its state on disk if HAProxy is gone
 * too; when ZooKeeper returns, routing follows it again.
 */
const H1 = '127.0.0.1';
const H2 = '127.0.0.2';

describe('router: independence, drift, and life without ZooKeeper', () => {
  let w: RouterWorld;
  let r1: RouterAgent;
  let hp1: HaproxyPaths;
  let hp2: HaproxyPaths;
  let n: readonly string[];
  let g1: { writePort: number; readPort: number };

  const metaRouter = async (id: string): Promise<MetaRouterRecord | null> => {
    const nd = await w.zkc.getOrNull(w.paths.metaRouter(id));
    return nd ? decodeRecord(metaRouterSchema, nd.data, `meta_router/${id}`) : null;
  };
  const bothWriteTo = (node: string, what: string) =>
    waitFor(
      async () =>
        (await whoAnswers(g1.writePort, H1)) === portOf(node) &&
        (await whoAnswers(g1.writePort, H2)) === portOf(node),
      {
        timeoutMs: 10_000,
        what,
      },
    );
  const bothReport = (epoch: number) =>
    waitFor(
      async () =>
        (await metaRouter('r1'))?.applied.g1 === epoch && (await metaRouter('r2'))?.applied.g1 === epoch,
      { timeoutMs: 5000, what: `both report epoch ${epoch}` },
    );
  const bothRead = async (node: string) => {
    assert.equal(await whoAnswers(g1.readPort, H1), portOf(node));
    assert.equal(await whoAnswers(g1.readPort, H2), portOf(node));
  };

  before(async () => {
    w = await startRouterWorld({ nodes: 3 });
    n = w.nodes;
    g1 = await w.addGroup('g1', { epoch: 1, write: n[0]!, read: [n[2]!] });
    ({ agent: r1, hp: hp1 } = await w.startRouter('r1'));
    ({ hp: hp2 } = await w.startRouter('r2', undefined, { bindAddress: H2 }));
    await bothWriteTo(n[0]!, 'both routers route writes to n0');
  });

  after(async () => {
    await w?.close();
  });

  it('two router agents converge to the same state and both report the epoch', async () => {
    await w.setRoute('g1', { epoch: 2, write: n[1]!, read: [n[2]!] });
    await bothWriteTo(n[1]!, 'both routers route writes to n1');
    await bothRead(n[2]!);
    await bothReport(2);
    assert.equal((await metaRouter('r2'))?.host, 'host-r2');
  });

  it('drift inside HAProxy (a server changed behind the router) is found and repaired', async () => {
    await haproxyRun(hp1.adminSocket, [
      'set server g1_write/w1 state maint',
      `set server g1_read/r1 addr 127.0.0.1 port ${portOf(n[0]!)}`,
    ]);
    await waitFor(
      async () =>
        (await whoAnswers(g1.writePort, H1)) === portOf(n[1]!) &&
        (await whoAnswers(g1.readPort, H1)) === portOf(n[2]!),
      {
        timeoutMs: 5000,
        what: 'drift repaired on r1',
      },
    );
  });

  it('ZooKeeper stopped: both HAProxies keep serving reads and writes, and drift is still repaired', async () => {
    await w.zk.members[0]!.stop();
    await waitFor(() => !r1.status().zkConnected, { timeoutMs: 5000, what: 'r1 sees ZooKeeper gone' });
    for (let i = 0; i < 3; i++) {
      await bothWriteTo(n[1]!, 'writes go on');
      await bothRead(n[2]!);
    }
    await haproxyRun(hp2.adminSocket, ['set server g1_write/w1 state maint']);
    await bothWriteTo(n[1]!, 'drift repaired on r2 without ZooKeeper');
  });

  it('router restarted while ZooKeeper is down: HAProxy still serves; with HAProxy gone too, the router brings it back from disk', async () => {
    await r1.stop();
    await bothWriteTo(n[1]!, 'HAProxy serves without its router');
    ({ agent: r1 } = await w.startRouter('r1', hp1));
    await bothWriteTo(n[1]!, 'still serving after the router restart');
    assert.deepEqual(
      r1.status().applied.map((g) => [g.name, g.epoch, g.write?.node]),
      [['g1', 2, n[1]!]],
    );

    await r1.stop();
    await stopHaproxyAt(hp1);
    assert.equal(await whoAnswers(g1.writePort, H1), 'ECONNREFUSED');
    ({ agent: r1 } = await w.startRouter('r1', hp1));
    await bothWriteTo(n[1]!, 'HAProxy brought back from the saved state');
    await bothRead(n[2]!);
  });

  it('ZooKeeper back: the restarted router reports its epoch and both follow the next change', async () => {
    await w.zk.members[0]!.start();
    await waitFor(async () => (await metaRouter('r1').catch(() => null))?.applied.g1 === 2, {
      timeoutMs: 15_000,
      what: 'r1 reports epoch 2 again',
    });
    await w.setRoute('g1', { epoch: 3, write: n[2]!, read: [n[0]!] });
    await bothWriteTo(n[2]!, 'both route writes to n2');
    await bothRead(n[0]!);
    await bothReport(3);
  });

  it('HAProxy killed under a running router is started again from the applied state', async () => {
    await stopHaproxyAt(hp2);
    assert.equal(await whoAnswers(g1.writePort, H2), 'ECONNREFUSED');
    await waitFor(async () => (await whoAnswers(g1.writePort, H2)) === portOf(n[2]!), {
      timeoutMs: 10_000,
      what: 'r2 restarted HAProxy',
    });
    await trackRouterHaproxy(hp2);
    assert.equal(await whoAnswers(g1.readPort, H2), portOf(n[0]!));
  });
});
