import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecord, metaRouterSchema } from '../../core/records';
import { startCluster, type Cluster } from '../../devenv/cluster';
import { runMha, zkSnapshot } from '../../devenv/cli';
import { TEST_CREDENTIALS } from '../../devenv/mariadb';
import { waitFor } from '../../devenv/wait';
import { startWeb, type WebProc } from '../../devenv/web';

/**
 * `mha web`'s JSON API on a real group (ZooKeeper + 3 MariaDB, heartbeat clients, a server
 * worker, one router's meta_router record, a switchover and a drained replica in its state):
 * every endpoint answers exactly what the matching `mha status|history|alerts --json` prints;
 * the group's event stream pushes the new state when ZooKeeper changes; anything but GET/HEAD is
 * 405 and changes nothing; a bad group name is 400; no response carries a secret.
 */
describe('mha web: JSON API', () => {
  let c: Cluster;
  let config: string;
  let web: WebProc;
  let drained: string;
  const bodies: string[] = [];

  const mha = async (...args: string[]): Promise<string> => {
    const r = await runMha([...args, '--config', config]);
    assert.equal(r.code, 0, `mha ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const api = async (p: string): Promise<unknown> => {
    const r = await web.get(p);
    const text = await r.text();
    bodies.push(text);
    assert.equal(r.status, 200, `GET ${p}: ${text}`);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    return JSON.parse(text) as unknown;
  };

  before(async () => {
    c = await startCluster({ nodes: 3, logLevel: 'warn' });
    config = c.writeConfig('cli', 'web');
    await c.startClients();
    await c.startServer('s1');
    await mha('switchover', c.group);
    const m = await c.master();
    drained = c.nodes.find((n) => n !== m.node)!;
    await mha('drain', drained);
    // What a router agent publishes (the browser test runs a real one).
    await c.zkClient.putEphemeral(
      c.paths.metaRouter('r1'),
      encodeRecord(
        metaRouterSchema,
        { v: 1, host: 'localhost', applied: { [c.group]: m.epoch }, at: Date.now() },
        c.paths.metaRouter('r1'),
      ),
    );
    web = await startWeb(config, c.dir);
  });
  after(async () => {
    await web?.close();
    await c?.close();
  });

  it('serves exactly what mha status --json prints, per group and for all groups', async () => {
    assert.deepEqual(
      await api(`/api/groups/${c.group}/status`),
      JSON.parse(await mha('status', c.group, '--json')),
    );
    assert.deepEqual(await api('/api/status'), JSON.parse(await mha('status', '--json')));
    assert.deepEqual(
      await api(`/api/groups/${c.group}/status?mysql=0`),
      JSON.parse(await mha('status', c.group, '--json', '--no-mysql')),
    );
    const st = (await api(`/api/groups/${c.group}/status`)) as {
      groups: Array<{
        nodes: Array<{ node: string; state: string[]; backlogTrx: number | null }>;
        routers: Array<{ id: string; appliedEpoch: number }>;
      }>;
    };
    const g = st.groups[0]!;
    assert.deepEqual(g.nodes.find((n) => n.node === drained)?.state, ['online', 'drained']);
    assert.deepEqual(
      g.routers.map((r) => [r.id, r.appliedEpoch]),
      [['r1', (await c.master()).epoch]],
    );
  });

  it('serves exactly what mha history --json and mha alerts --json print', async () => {
    const history = (await api(`/api/groups/${c.group}/history`)) as Array<{ event: { kind: string } }>;
    assert.deepEqual(history, JSON.parse(await mha('history', c.group, '--json')));
    assert.equal(history.at(-1)?.event.kind, 'switchover');
    assert.deepEqual(await api('/api/alerts'), JSON.parse(await mha('alerts', '--json')));
    assert.deepEqual(await api(`/api/groups/${c.group}/alerts`), JSON.parse(await mha('alerts', '--json')));
  });

  it('lists the group in the overview with its master and health', async () => {
    const m = await c.master();
    const o = (await api('/api/groups')) as {
      groups: Array<{ group: string; master: string; epoch: number; health: string; readPool: number }>;
      servers: Array<{ id: string }>;
    };
    const s = await waitFor(
      async () =>
        ((await api('/api/groups')) as typeof o).groups.find(
          (x) => x.group === c.group && x.epoch === m.epoch,
        ),
      { timeoutMs: 5000, what: 'the overview to list the group' },
    );
    assert.equal(s.master, m.node);
    assert.equal(s.health, 'ok');
    assert.deepEqual(
      o.servers.map((x) => x.id),
      ['s1'],
    );
  });

  it("pushes the group's new state on its event stream when ZooKeeper changes", async () => {
    const ac = new AbortController();
    const r = await web.get(`/api/groups/${c.group}/events`, { signal: ac.signal });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    const nextDetail = async (): Promise<{ status: { nodes: Array<{ node: string; state: string[] }> } }> => {
      for (;;) {
        const i = buf.indexOf('\n\n');
        if (i >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          bodies.push(frame);
          const data = /^event: detail\ndata: (.*)$/m.exec(frame);
          if (data !== null) return JSON.parse(data[1]!) as Awaited<ReturnType<typeof nextDetail>>;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('event stream ended');
        buf += value;
      }
    };
    try {
      const first = await nextDetail();
      assert.deepEqual(first.status.nodes.find((n) => n.node === drained)?.state, ['online', 'drained']);
      await mha('undrain', drained);
      const deadline = Date.now() + 5000;
      for (;;) {
        const d = await nextDetail();
        if (d.status.nodes.find((n) => n.node === drained)?.state.includes('drained') === false) break;
        assert.ok(Date.now() < deadline, 'no pushed state shows the replica back in the read pool');
      }
    } finally {
      ac.abort();
      await reader.cancel().catch(() => undefined);
    }
  });

  it('refuses anything but GET and HEAD with 405, changing nothing', async () => {
    const before = await zkSnapshot(c.zkClient, c.root);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])
      for (const p of [
        '/',
        `/api/groups/${c.group}/status`,
        '/api/alerts',
        `/api/groups/${c.group}/events`,
      ]) {
        const r = await web.get(p, {
          method,
          body: method === 'POST' || method === 'PUT' ? '{}' : undefined,
        });
        const text = await r.text();
        bodies.push(text);
        assert.equal(r.status, 405, `${method} ${p}`);
        assert.equal(r.headers.get('allow'), 'GET, HEAD');
      }
    const head = await web.get(`/api/groups/${c.group}/status`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.deepEqual(await zkSnapshot(c.zkClient, c.root), before);
  });

  it('answers 400 for a bad group name, 404 for an unknown group or path, 403 for a foreign Host', async () => {
    const bad = ['UPPER', 'a%20b', 'a.b', '..%2fmeta_group', '-dash', 'x'.repeat(64), '%zz', 'g%00'];
    for (const name of bad)
      for (const what of ['status', 'history', 'alerts', 'events']) {
        const r = await web.get(`/api/groups/${name}/${what}`);
        const body = (await r.json()) as { error: string };
        assert.equal(r.status, 400, `${name}/${what}`);
        assert.match(body.error, /invalid group name/);
      }
    assert.equal((await web.get('/group/UPPER')).status, 400);
    assert.equal((await web.get('/api/groups/nosuchgroup/status')).status, 404);
    assert.equal((await web.get('/api/groups/nosuchgroup/events')).status, 404);
    assert.equal((await web.get('/api/status?mysql=maybe')).status, 400);
    for (const p of [
      '/static/../package.json',
      '/static/%2e%2e%2fpackage.json',
      '/etc/passwd',
      '/api/nothing',
    ])
      assert.equal((await web.get(p)).status, 404, p);
    // A DNS name pointing at 127.0.0.1 (rebinding) must not let another site read the status.
    const foreign = await new Promise<number>((resolve, reject) => {
      void import('node:http').then((http) =>
        http
          .get(
            { host: '127.0.0.1', port: web.port, path: '/api/status', headers: { host: 'evil.example:80' } },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          )
          .on('error', reject),
      );
    });
    assert.equal(foreign, 403);
  });

  it('serves its page offline with a strict content security policy, and no response holds a secret', async () => {
    for (const p of [
      '/',
      `/group/${c.group}`,
      '/static/app.css',
      '/static/group.js',
      '/static/topology.js',
    ]) {
      const r = await web.get(p);
      assert.equal(r.status, 200, p);
      assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      const text = await r.text();
      assert.doesNotMatch(text, /https?:\/\/(?!www\.w3\.org)/, `${p} loads nothing from elsewhere`);
      bodies.push(text);
    }
    assert.ok(bodies.length > 20);
    const all = bodies.join('\n');
    for (const { password } of Object.values(TEST_CREDENTIALS)) assert.ok(!all.includes(password));
    assert.doesNotMatch(all, /passwordFile|mysql\.pass|repl\.pass/);
    assert.ok(!all.includes(config), 'the config file path is not shown');
  });
});
