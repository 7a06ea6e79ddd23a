import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Secret } from '../../core/config';
import { isZkmhaError, ZkmhaError } from '../../core/errors';
import { decodeRecord, encodeRecord, masterSchema } from '../../core/records';
import { Zk, type NodeData } from '../../core/zk/client';
import { acquireLock } from '../../core/zk/lock';
import { ZkPaths } from '../../core/zk/paths';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, testLogger, type ZkCluster } from '../../devenv/zookeeper';

/** The wrapper against one real standalone ZooKeeper server. */
const SESSION_MS = 1500;

function assertZkError(err: unknown, code: string, path?: string): true {
  assert.ok(err instanceof ZkmhaError, `expected a ZkmhaError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (path !== undefined) assert.ok(err.message.includes(path), `message names ${path}: ${err.message}`);
  return true;
}

describe('Zk client (standalone ZooKeeper)', () => {
  let zks: ZkCluster;
  let zk: Zk;
  let other: Zk;
  const open: Zk[] = [];

  const connect = async (extra: Partial<Parameters<typeof Zk.connect>[0]> = {}): Promise<Zk> => {
    const c = await Zk.connect({
      hosts: zks.connectString,
      sessionTimeoutMs: SESSION_MS,
      logger: testLogger(),
      ...extra,
    });
    open.push(c);
    return c;
  };

  before(async () => {
    zks = await startZooKeeper();
    zk = await connect();
    other = await connect();
    await zk.mkdirp('/t');
  });

  after(async () => {
    await Promise.all(open.map((c) => c.close()));
    await zks?.close();
  });

  it('creates, reads, sets and deletes with the path in every error', async () => {
    await zk.mkdirp('/t/basic/deep');
    assert.notEqual(await zk.exists('/t/basic/deep'), null);
    const created = await zk.create('/t/basic/a', Buffer.from('one'));
    assert.equal(created, '/t/basic/a');
    await assert.rejects(zk.create('/t/basic/a', Buffer.from('x')), (e) =>
      assertZkError(e, 'ZK_NODE_EXISTS', '/t/basic/a'),
    );
    const got = await zk.get('/t/basic/a');
    assert.equal(got.data?.toString(), 'one');
    assert.equal(got.stat.version, 0);
    assert.equal(got.stat.ephemeralOwner, '0');
    assert.equal(await zk.getOrNull('/t/basic/none'), null);
    await assert.rejects(zk.get('/t/basic/none'), (e) => assertZkError(e, 'ZK_NO_NODE', '/t/basic/none'));
    await assert.rejects(zk.children('/t/nothing/here'), (e) =>
      assertZkError(e, 'ZK_NO_NODE', '/t/nothing/here'),
    );
    const seq = await zk.create('/t/basic/s-', null, 'persistent_sequential');
    assert.match(seq, /^\/t\/basic\/s-\d{10}$/);
    assert.deepEqual(
      (await zk.children('/t/basic')).sort(),
      ['a', 'deep', seq.slice('/t/basic/'.length)].sort(),
    );
    assert.deepEqual(await zk.childrenOrEmpty('/t/nothing/here'), []);
    assert.deepEqual(
      (await zk.childrenOrEmpty('/t/basic')).sort(),
      ['a', 'deep', seq.slice('/t/basic/'.length)].sort(),
    );
    assert.equal(await zk.deleteIfExists('/t/basic/a'), true);
    assert.equal(await zk.deleteIfExists('/t/basic/a'), false);
  });

  it('refuses a stale compare-and-set, version 0 included, and changes nothing', async () => {
    await zk.create('/t/cas', Buffer.from('v0'));
    const s1 = await zk.set('/t/cas', Buffer.from('v1'), 0);
    assert.equal(s1.version, 1);
    // Version has moved on to 1: a CAS with 0 (the library's "any version" trap) must fail.
    await assert.rejects(zk.set('/t/cas', Buffer.from('stale'), 0), (e) =>
      assertZkError(e, 'ZK_BAD_VERSION', '/t/cas'),
    );
    await assert.rejects(zk.delete('/t/cas', 0), (e) => assertZkError(e, 'ZK_BAD_VERSION', '/t/cas'));
    await assert.rejects(zk.set('/t/cas', Buffer.from('stale'), 7), (e) =>
      assertZkError(e, 'ZK_BAD_VERSION'),
    );
    assert.equal((await zk.get('/t/cas')).data?.toString(), 'v1');
    // -1 means any version.
    assert.equal((await zk.set('/t/cas', Buffer.from('v2'), -1)).version, 2);
  });

  it('refuses version 0 inside a multi against a node whose version moved on', async () => {
    await zk.create('/t/mcas', Buffer.from('a'));
    await zk.set('/t/mcas', Buffer.from('b'), 0); // now version 1
    for (const op of [
      { op: 'set', path: '/t/mcas', data: Buffer.from('stale'), version: 0 },
      { op: 'check', path: '/t/mcas', version: 0 },
      { op: 'delete', path: '/t/mcas', version: 0 },
    ] as const) {
      await assert.rejects(zk.multi([op, { op: 'create', path: '/t/mcas-side' }]), (e) => {
        assertZkError(e, 'ZK_BAD_VERSION', '/t/mcas');
        assert.deepEqual(
          { opIndex: (e as ZkmhaError).details?.opIndex, zkCode: (e as ZkmhaError).details?.zkCode },
          { opIndex: 0, zkCode: 'BAD_VERSION' },
        );
        return true;
      });
    }
    assert.equal((await zk.get('/t/mcas')).data?.toString(), 'b');
    assert.equal(await zk.exists('/t/mcas-side'), null);
    // A matching version 0 on a fresh node does succeed.
    await zk.create('/t/mcas0', Buffer.from('x'));
    await zk.multi([{ op: 'set', path: '/t/mcas0', data: Buffer.from('y'), version: 0 }]);
    assert.equal((await zk.get('/t/mcas0')).data?.toString(), 'y');
  });

  it('applies a multi atomically: failing in its last op changes nothing', async () => {
    await zk.create('/t/multi', Buffer.from('m0'));
    await zk.create('/t/multi-gone', Buffer.from('x'));
    await assert.rejects(
      zk.multi([
        { op: 'set', path: '/t/multi', data: Buffer.from('m1'), version: 0 },
        { op: 'create', path: '/t/multi-new', data: Buffer.from('n') },
        { op: 'delete', path: '/t/multi-gone', version: -1 },
        { op: 'create', path: '/t/multi-hist/e-', mode: 'persistent_sequential' }, // parent missing
      ]),
      (e) => {
        assertZkError(e, 'ZK_NO_NODE', '/t/multi-hist/e-');
        assert.equal((e as ZkmhaError).details?.opIndex, 3);
        assert.equal((e as ZkmhaError).details?.path, '/t/multi-hist/e-');
        return true;
      },
    );
    assert.equal((await zk.get('/t/multi')).stat.version, 0);
    assert.equal((await zk.get('/t/multi')).data?.toString(), 'm0');
    assert.equal(await zk.exists('/t/multi-new'), null);
    assert.notEqual(await zk.exists('/t/multi-gone'), null);
    // The same multi with the parent present goes through and reports the sequential path.
    await zk.create('/t/multi-hist');
    const res = await zk.multi([
      { op: 'set', path: '/t/multi', data: Buffer.from('m1'), version: 0 },
      { op: 'create', path: '/t/multi-new', data: Buffer.from('n') },
      { op: 'delete', path: '/t/multi-gone', version: -1 },
      { op: 'create', path: '/t/multi-hist/e-', mode: 'persistent_sequential' },
    ]);
    assert.match(res[3]!.path, /^\/t\/multi-hist\/e-\d{10}$/);
    assert.equal((await zk.get('/t/multi')).data?.toString(), 'm1');
    assert.equal(await zk.exists('/t/multi-gone'), null);
  });

  it('removes a whole tree with removeRecursive', async () => {
    for (const p of ['/t/tree/a/b/c/d', '/t/tree/a/x', '/t/tree/e/f/g']) await zk.mkdirp(p);
    await zk.create('/t/tree/a/b/c/d/leaf', Buffer.from('l'));
    await zk.removeRecursive('/t/tree');
    assert.equal(await zk.exists('/t/tree'), null);
    await zk.removeRecursive('/t/tree'); // missing is fine
  });

  it('reports malformed znode data with the path named, and never a half-parsed value', async () => {
    // Records are validated where they cross the boundary (core/records decode/encode).
    const read = async (p: string) => decodeRecord(masterSchema, (await zk.get(p)).data, p);
    const path = '/t/records/master-g1';
    await zk.mkdirp('/t/records');
    await zk.create(path, Buffer.from('{"v":1,"node":"10.0.0.1:3306","epoch":"three"'));
    await assert.rejects(read(path), (e) => assertZkError(e, 'BAD_RECORD', path));
    await zk.set(
      path,
      Buffer.from(JSON.stringify({ v: 1, node: 'not a node', epoch: 1, since: 1, reason: 'x' })),
    );
    await assert.rejects(read(path), (e) => assertZkError(e, 'BAD_RECORD', path));
    const cur = await zk.get(path);
    await zk.set(
      path,
      encodeRecord(masterSchema, { v: 1, node: '10.0.0.1:3306', epoch: 3, since: 1, reason: 'test' }, path),
      cur.stat.version,
    );
    assert.equal((await read(path)).epoch, 3);
    // Writing an invalid record is refused before it reaches ZooKeeper.
    assert.throws(
      () => encodeRecord(masterSchema, { v: 1, node: 'bad', epoch: 4, since: 1, reason: '' }, path),
      (e) => assertZkError(e, 'BAD_RECORD', path),
    );
    assert.equal((await read(path)).epoch, 3);
    assert.equal(await zk.getOrNull('/t/records/none'), null);
  });

  it('watches data and children level-triggered, and stops after cancel', async () => {
    await zk.mkdirp('/t/w');
    const seen: (string | null)[] = [];
    const kids: (string[] | null)[] = [];
    const w1 = zk.watchData('/t/w/node', (v: NodeData | null) =>
      seen.push(v === null ? null : (v.data?.toString() ?? '')),
    );
    const w2 = zk.watchChildren('/t/w/dir', (c) => kids.push(c));
    await waitFor(() => seen.length > 0 && kids.length > 0, {
      timeoutMs: 2000,
      what: 'initial watch values',
    });
    assert.equal(seen.at(-1), null);
    assert.equal(kids.at(-1), null);
    await other.create('/t/w/node', Buffer.from('a'));
    await waitFor(() => seen.at(-1) === 'a', { timeoutMs: 2000, what: 'watch sees creation' });
    await other.set('/t/w/node', Buffer.from('b'));
    await waitFor(() => seen.at(-1) === 'b', { timeoutMs: 2000, what: 'watch sees change' });
    await other.mkdirp('/t/w/dir');
    await other.create('/t/w/dir/k2');
    await other.create('/t/w/dir/k1');
    await waitFor(() => JSON.stringify(kids.at(-1)) === '["k1","k2"]', {
      timeoutMs: 2000,
      what: 'children watch',
    });
    await other.delete('/t/w/node');
    await waitFor(() => seen.at(-1) === null, { timeoutMs: 2000, what: 'watch sees deletion' });
    w1.cancel();
    w2.cancel();
    const n = seen.length;
    await other.create('/t/w/node', Buffer.from('after-cancel'));
    // A third watch on the same node proves the change was notified; the cancelled one stays quiet.
    const probe: (string | null)[] = [];
    const w3 = zk.watchData('/t/w/node', (v) => probe.push(v?.data?.toString() ?? null));
    await waitFor(() => probe.at(-1) === 'after-cancel', { timeoutMs: 2000, what: 'third watch' });
    w3.cancel();
    assert.equal(seen.length, n);
  });

  it('uses digest auth: nodes created with credentials are closed to others', async () => {
    const authed = await connect({ auth: { user: 'mha', password: new Secret('s3cret') } });
    await authed.create('/t-secure', Buffer.from('x'));
    assert.equal((await authed.get('/t-secure')).data?.toString(), 'x');
    await assert.rejects(
      zk.get('/t-secure'),
      (e) => isZkmhaError(e, 'ZK_NO_AUTH') && (e as ZkmhaError).details?.zkCode === 'NO_AUTH',
    );
    const sameUser = await connect({ auth: { user: 'mha', password: new Secret('s3cret') } });
    assert.equal((await sameUser.get('/t-secure')).data?.toString(), 'x');
  });

  it('a lock holder frozen past 2/3 of its session no longer holds the lock when it thaws', async () => {
    const paths = new ZkPaths('/lockthaw');
    const c = await connect();
    const lock = await acquireLock(c, paths, 'g1', { timeoutMs: 2000, owner: 'frozen-worker' });
    assert.equal(lock.isHeld(), true);
    // Block the event loop as a GC pause or SIGSTOP would: no timer, no event, no answer runs.
    const frozenUntil = Date.now() + Math.ceil((SESSION_MS * 2) / 3) + 100;
    while (Date.now() < frozenUntil) {
      // busy: the process is "frozen"
    }
    // The first thing the thawed holder asks must be answered with the truth as far as it knows.
    assert.equal(lock.isHeld(), false, 'a thawed holder must not act on a lock it may have lost');
    await lock.release();
  });

  it('fails a connect to nothing with ZK_TIMEOUT within the bound', async () => {
    const dead = `127.0.0.1:1`;
    await assert.rejects(
      Zk.connect({ hosts: dead, sessionTimeoutMs: 1000, connectTimeoutMs: 300, logger: testLogger() }),
      (e) => assertZkError(e, 'ZK_TIMEOUT', dead),
    );
  });

  it('after session expiry emits expired then session, and watches fire on the new session', async () => {
    const c = await connect();
    await c.mkdirp('/t/exp');
    await c.putEphemeral('/t/exp/eph', Buffer.from('old'));
    const values: (string | null)[] = [];
    c.watchData('/t/exp/val', (v) => values.push(v?.data?.toString() ?? null));
    const events: string[] = [];
    for (const ev of ['connected', 'disconnected', 'expired', 'session']) c.on(ev, () => events.push(ev));
    const oldSession = c.sessionId;

    // Freeze the server past the session timeout: the client hears nothing, gives the session up,
    // and opens a new one when the server answers again.
    const server = zks.members[0]!;
    server.pause();
    try {
      await waitFor(() => events.includes('expired'), { timeoutMs: SESSION_MS * 3, what: "'expired'" });
    } finally {
      server.resume();
    }
    await waitFor(() => events.includes('session'), { timeoutMs: 10000, what: "'session'" });
    assert.ok(events.indexOf('disconnected') < events.indexOf('expired'), events.join(','));
    assert.ok(events.indexOf('expired') < events.lastIndexOf('session'), events.join(','));
    assert.notEqual(c.sessionId, oldSession);
    assert.ok(c.isOwnSession(oldSession));

    // Republishing works even if the old session's ephemeral has not been reaped yet.
    await c.putEphemeral('/t/exp/eph', Buffer.from('new'));
    const eph = await c.get('/t/exp/eph');
    assert.equal(eph.stat.ephemeralOwner, c.sessionId);
    assert.equal(eph.data?.toString(), 'new');

    await other.create('/t/exp/val', Buffer.from('after-expiry'));
    await waitFor(() => values.at(-1) === 'after-expiry', {
      timeoutMs: 3000,
      what: 'watch on the new session',
    });
    await other.set('/t/exp/val', Buffer.from('again'));
    await waitFor(() => values.at(-1) === 'again', {
      timeoutMs: 3000,
      what: 'watch re-armed on the new session',
    });
  });
});
