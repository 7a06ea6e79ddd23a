import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../core/config';
import { haproxyRun, showProc } from '../../core/haproxy/cli';
import { checkConfigFile } from '../../core/haproxy/process';
import { isZkmhaError } from '../../core/errors';
import { freePorts } from '../../devenv/ports';
import { waitFor } from '../../devenv/wait';
import {
  haproxyDir,
  removeHaproxyDir,
  startGreeter,
  startTestHaproxy,
  tcpGreeting,
  type GreeterServer,
  type HaproxyPaths,
  type TestHaproxy,
} from '../../devenv/haproxy';

/**
 * The HAProxy test environment, and the HAProxy behaviour the router relies on, checked on the
 * real binary: runtime server changes without reload, cutting sessions, confirmed reloads.
 */
function config(p: HaproxyPaths, port: number, extraListenPort?: number): string {
  return [
    'global',
    '    master-worker',
    `    stats socket ${p.adminSocket} mode 600 level admin expose-fd listeners`,
    'defaults',
    '    mode tcp',
    '    timeout connect 1s',
    '    timeout client 1h',
    '    timeout server 1h',
    'listen g_write',
    `    bind 127.0.0.1:${port}`,
    '    server w1 127.0.0.1:1 check inter 1s disabled',
    ...(extraListenPort !== undefined
      ? ['listen g2_write', `    bind 127.0.0.1:${extraListenPort}`, '    server w1 127.0.0.1:1 disabled']
      : []),
    '',
  ].join('\n');
}

function openConnection(
  port: number,
): Promise<{ sock: net.Socket; greeting: string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ host: '127.0.0.1', port });
    const closed = new Promise<void>((res) => sock.once('close', () => res()));
    sock.once('error', reject);
    sock.once('data', (d: Buffer) => resolve({ sock, greeting: d.toString(), closed }));
  });
}

describe('HAProxy test environment', () => {
  let p: HaproxyPaths;
  let hap: TestHaproxy;
  let port: number;
  let port2: number;
  let a: GreeterServer;
  let b: GreeterServer;

  before(async () => {
    [port, port2] = (await freePorts(2)) as [number, number];
    a = await startGreeter('a');
    b = await startGreeter('b');
    p = haproxyDir();
    hap = await startTestHaproxy(config(p, port), p);
  });

  after(async () => {
    await hap?.stop();
    await a?.close();
    await b?.close();
    if (p) removeHaproxyDir(p);
  });

  it('every golden router configuration passes haproxy -c', async () => {
    const dir = path.join(PACKAGE_ROOT, 'test', 'golden');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cfg'));
    assert.ok(files.length >= 3);
    for (const f of files) await checkConfigFile('haproxy', path.join(dir, f));
  });

  it('haproxy -c rejects a broken configuration with its alert on one line', async () => {
    const bad = path.join(p.dir, 'bad.cfg');
    fs.writeFileSync(bad, 'global\n    no-such-directive 1\n');
    await assert.rejects(
      checkConfigFile('haproxy', bad),
      (err: unknown) =>
        isZkmhaError(err, 'HAPROXY_ERROR') &&
        /no-such-directive/.test(err.message) &&
        !err.message.includes('\n'),
    );
  });

  it('a disabled slot refuses service; set addr + ready routes new connections at once, no reload', async () => {
    assert.deepEqual(await tcpGreeting(port), { ok: false, error: 'closed' });
    const before = await showProc(p.masterSocket);
    await haproxyRun(p.adminSocket, [
      `set server g_write/w1 addr 127.0.0.1 port ${a.port}`,
      'set server g_write/w1 state ready',
    ]);
    assert.deepEqual(await tcpGreeting(port), { ok: true, data: 'hello a\n' });
    const st = (await hap.serversState()).find((s) => s.server === 'w1')!;
    assert.deepEqual([st.addr, st.port, st.maint], ['127.0.0.1', a.port, false]);
    assert.deepEqual((await showProc(p.masterSocket)).workers, before.workers, 'no reload happened');
  });

  it('maint + shutdown sessions cuts an open connection to the old server; the new one serves', async () => {
    await haproxyRun(p.adminSocket, [
      `set server g_write/w1 addr 127.0.0.1 port ${a.port}`,
      'set server g_write/w1 state ready',
    ]);
    const conn = await openConnection(port);
    assert.equal(conn.greeting, 'hello a\n');
    await haproxyRun(p.adminSocket, [
      'set server g_write/w1 state maint',
      'shutdown sessions server g_write/w1',
      `set server g_write/w1 addr 127.0.0.1 port ${b.port}`,
      'set server g_write/w1 state ready',
    ]);
    await conn.closed;
    assert.deepEqual(await tcpGreeting(port), { ok: true, data: 'hello b\n' });
  });

  it('a refused runtime command is an error naming it', async () => {
    await assert.rejects(
      haproxyRun(p.adminSocket, ['set server g_write/w9 state ready']),
      (err: unknown) => isZkmhaError(err, 'HAPROXY_ERROR') && /w9/.test(err.message),
    );
  });

  it('a reload through the master CLI is confirmed by a new worker; a failed one is reported and the old worker serves', async () => {
    fs.writeFileSync(p.haproxyConfig, config(p, port, port2));
    const ok = await hap.reload();
    assert.equal(ok.ok, true);
    await waitFor(async () => (await hap.serversState()).some((s) => s.backend === 'g2_write'), {
      timeoutMs: 5000,
      what: 'new listener',
    });
    // After a reload the configuration file decides: w1 is disabled again until set at runtime.
    await haproxyRun(p.adminSocket, [
      `set server g_write/w1 addr 127.0.0.1 port ${a.port}`,
      'set server g_write/w1 state ready',
    ]);
    // Now a configuration whose listener port is taken by another process.
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      fs.writeFileSync(p.haproxyConfig, config(p, port, taken));
      const bad = await hap.reload();
      assert.equal(bad.ok, false);
      assert.deepEqual(
        await tcpGreeting(port),
        { ok: true, data: 'hello a\n' },
        'the previous worker keeps serving',
      );
    } finally {
      blocker.close();
    }
  });
});
