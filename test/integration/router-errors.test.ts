import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import {
  alertSchema,
  decodeRecord,
  encodeRecord,
  metaGroupSchema,
  metaRouterSchema,
  type AlertRecord,
  type MetaRouterRecord,
} from '../../core/records';
import type { RouterAgent } from '../../router/agent';
import type { HaproxyPaths } from '../../devenv/haproxy';
import { portOf, startRouterWorld, whoAnswers, type RouterWorld } from '../../devenv/router';
import { waitFor } from '../../devenv/wait';

/**
 * Given a group served by a router, when ZooKeeper holds a defective record, names a node that is
 * not a member, goes back in epoch, or the template breaks, or a reload fails, then the previous
 * state keeps serving, `meta_router/<id>.lastError` says why and `watch_down/<group>__router`
 * alerts — and once the input is fixed, the router follows again and lastError clears. The write
 * side is the exception: a route at a newer (or the same) epoch always decides it, and a write
 * node that cannot be routed leaves the write listener empty, never on the previous master.
 */
describe('router: bad input leaves the previous state serving, with an alert', () => {
  let w: RouterWorld;
  let agent: RouterAgent;
  let hp: HaproxyPaths;
  let n: readonly string[];
  let g1: { writePort: number; readPort: number };
  let goodTemplate: string;

  const metaRouter = async (): Promise<MetaRouterRecord | null> => {
    const nd = await w.zkc.getOrNull(w.paths.metaRouter('r1'));
    return nd ? decodeRecord(metaRouterSchema, nd.data, 'meta_router/r1') : null;
  };
  const alert = async (group: string): Promise<AlertRecord | null> => {
    const p = w.paths.watchDown(group, 'router');
    const nd = await w.zkc.getOrNull(p);
    return nd ? decodeRecord(alertSchema, nd.data, p) : null;
  };
  /** lastError and the alert both mention `pattern`. */
  const reported = (group: string, pattern: RegExp, what: string) =>
    waitFor(
      async () => {
        const mr = await metaRouter();
        const al = await alert(group);
        return mr?.lastError !== undefined &&
          pattern.test(mr.lastError) &&
          al !== null &&
          pattern.test(String(al.detail.error))
          ? { mr, al }
          : null;
      },
      { timeoutMs: 10_000, what },
    );
  const cleared = (what: string) =>
    waitFor(async () => (await metaRouter())?.lastError === undefined, { timeoutMs: 10_000, what });
  /** The write listener has no server: connections are refused or closed, and status says so. */
  const writesRefused = async (what: string) => {
    await waitFor(async () => typeof (await whoAnswers(g1.writePort)) !== 'number', {
      timeoutMs: 5000,
      what: `write port refuses (${what})`,
    });
    assert.equal(agent.status().applied.find((g) => g.name === 'g1')?.write, null);
  };
  const serving = async (write: string, read: string) => {
    assert.equal(await whoAnswers(g1.writePort), portOf(write));
    assert.equal(await whoAnswers(g1.readPort), portOf(read));
  };

  before(async () => {
    w = await startRouterWorld({ nodes: 3 });
    n = w.nodes;
    g1 = await w.addGroup('g1', { epoch: 5, write: n[0]!, read: [n[1]!] });
    ({ agent, hp } = await w.startRouter('r1'));
    goodTemplate = fs.readFileSync(hp.template, 'utf8');
    await waitFor(async () => (await metaRouter())?.applied.g1 === 5, {
      timeoutMs: 10_000,
      what: 'g1 applied',
    });
    await serving(n[0]!, n[1]!);
  });

  after(async () => {
    await w?.close();
  });

  it('a malformed haproxy/ record', async () => {
    await w.setRaw(w.paths.haproxy('g1'), Buffer.from('{"v":1,"epoch":"six","write":null'));
    const { mr, al } = await reported('g1', /haproxy\/g1: not UTF-8 JSON/, 'malformed record reported');
    assert.equal(mr.applied.g1, 5);
    assert.equal(al.kind, 'router');
    assert.equal(al.detail.router, 'r1');
    await serving(n[0]!, n[1]!);
    // A record that parses but breaks the schema is refused the same way.
    await w.setRaw(
      w.paths.haproxy('g1'),
      Buffer.from(JSON.stringify({ v: 1, epoch: 5, write: 'not a node', read: [] })),
    );
    await reported('g1', /haproxy\/g1: write: must be host:port/, 'invalid record reported');
    await serving(n[0]!, n[1]!);
    // ... but when it shows a newer epoch, the master routed so far is outdated: writes are
    // refused (reads go on), and the applied epoch stays, so a corrected record applies again.
    await w.setRaw(
      w.paths.haproxy('g1'),
      Buffer.from(JSON.stringify({ v: 1, epoch: 6, write: 'not a node', read: [] })),
    );
    await reported('g1', /its epoch 6 is above the applied epoch 5: writes refused/, 'fence reported');
    await writesRefused('invalid record at a newer epoch');
    assert.equal(await whoAnswers(g1.readPort), portOf(n[1]!));
    assert.equal((await metaRouter())?.applied.g1, 5);
    await w.setRoute('g1', { epoch: 5, write: n[0]!, read: [n[2]!] });
    await cleared('lastError cleared after a good record');
    await serving(n[0]!, n[2]!);
  });

  it('a node that is not a member of meta_group: the write side still follows the newest epoch', async () => {
    // A failover's fence naming an unknown write node: writes are refused rather than left on the
    // previous master; the readers keep serving.
    await w.setRoute('g1', { epoch: 6, write: '127.0.0.1:1', read: [n[2]!] });
    const { mr } = await reported(
      'g1',
      /127\.0\.0\.1:1 not a member.*writes refused/,
      'unknown node reported',
    );
    assert.equal(mr.applied.g1, 6);
    await writesRefused('unknown write node');
    assert.equal(await whoAnswers(g1.readPort), portOf(n[2]!));
    // The new master with one unknown reader: the master and the good reader are routed.
    await w.setRoute('g1', { epoch: 6, write: n[1]!, read: ['127.0.0.1:2', n[2]!] });
    await reported('g1', /127\.0\.0\.1:2 not a member.*read node not routed/, 'unknown reader reported');
    await waitFor(async () => (await whoAnswers(g1.writePort)) === portOf(n[1]!), {
      timeoutMs: 5000,
      what: 'write on n1 despite the unknown reader',
    });
    assert.equal(await whoAnswers(g1.readPort), portOf(n[2]!));
    await w.setRoute('g1', { epoch: 6, write: n[1]!, read: [n[2]!] });
    await cleared('lastError cleared');
    await serving(n[1]!, n[2]!);
  });

  it('a record with a lower epoch than applied', async () => {
    await w.setRoute('g1', { epoch: 4, write: n[0]!, read: [n[0]!] });
    const { mr } = await reported('g1', /epoch 4 is lower than the applied epoch 6/, 'stale epoch reported');
    assert.equal(mr.applied.g1, 6);
    await serving(n[1]!, n[2]!);
    await w.setRoute('g1', { epoch: 6, write: n[1]!, read: [n[2]!] });
    await cleared('lastError cleared');
  });

  it('a template that does not compile: alert, and routing still follows with the last good template', async () => {
    fs.writeFileSync(hp.template, goodTemplate.replace('{{/each}}\n{{/each}}', '{{/each}}\n'));
    await reported('g1', /template .* not used: template: Parse error/, 'template error reported');
    // A failover still gets through: the last good template renders it.
    await w.setRoute('g1', { epoch: 7, write: n[0]!, read: [n[2]!] });
    await waitFor(async () => (await whoAnswers(g1.writePort)) === portOf(n[0]!), {
      timeoutMs: 5000,
      what: 'write on n0 despite the template',
    });
    await waitFor(() => fs.readFileSync(hp.haproxyConfig, 'utf8').includes(`server w1 ${n[0]!} check`), {
      timeoutMs: 5000,
      what: 'file follows',
    });
    assert.equal((await metaRouter())?.applied.g1, 7);
  });

  it('a template that renders a configuration HAProxy rejects: alert, previous configuration kept', async () => {
    fs.writeFileSync(
      hp.template,
      goodTemplate.replace('    stats timeout 30s\n', '    stats timeout 30s\n    no-such-directive on\n'),
    );
    await reported(
      'g1',
      /template .* not used: haproxy -c: .*no-such-directive/,
      'rejected template reported',
    );
    assert.ok(!fs.readFileSync(hp.haproxyConfig, 'utf8').includes('no-such-directive'), 'file not replaced');
    await serving(n[0]!, n[2]!);
    fs.writeFileSync(hp.template, goodTemplate);
    await cleared('lastError cleared with the good template back');
  });

  it('a failed reload (listener port taken): the other groups keep serving, the file is restored', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const p = w.paths.metaGroup('g3');
      await w.zkc.create(
        p,
        encodeRecord(
          metaGroupSchema,
          {
            v: 1,
            name: 'g3',
            flavor: 'mariadb',
            writePort: taken,
            readPort: taken + 1 === g1.writePort ? taken + 2 : taken + 1,
            members: [...n],
            settings: {},
          },
          p,
        ),
      );
      await w.setRoute('g3', { epoch: 1, write: n[2]!, read: [] });
      await reported('g3', /reload failed/, 'failed reload reported');
      await serving(n[0]!, n[2]!);
      assert.ok(
        !fs.readFileSync(hp.haproxyConfig, 'utf8').includes('g3_write'),
        'configuration file restored',
      );
      assert.deepEqual(
        agent.status().applied.map((g) => g.name),
        ['g1'],
      );
      // Routing of the existing group still follows ZooKeeper meanwhile.
      await w.setRoute('g1', { epoch: 8, write: n[1]!, read: [n[2]!] });
      await waitFor(async () => (await whoAnswers(g1.writePort)) === portOf(n[1]!), {
        timeoutMs: 5000,
        what: 'write on n1',
      });
    } finally {
      blocker.close();
      await w.removeGroup('g3');
    }
    await cleared('lastError cleared once g3 is gone');
  });
});
