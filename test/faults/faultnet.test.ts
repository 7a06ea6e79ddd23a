import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { FaultNet } from '../env/faults';
import { freePorts } from '../../devenv/ports';
import { waitFor } from '../../devenv/wait';

/**
 * The fault library itself: a cut is silent (the connect times out, it is not refused) and hits
 * only the cgroup named; healing restores it at once; an isolated host still reaches its own
 * ports and the exempt observer still reaches them. Without this the scenarios could pass on a
 * partition that never happened.
 */
const CONNECT = `const s = require('net').connect(Number(process.argv[1]), '127.0.0.1');
s.setTimeout(700, () => { console.log('timeout'); process.exit(0); });
s.on('data', (d) => { console.log('got ' + d); process.exit(0); });
s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });`;

/** Milliseconds from connect to the server's first data, or the error code. */
const TIMED = `const t0 = Date.now(); const s = require('net').connect(Number(process.argv[1]), '127.0.0.1');
s.setTimeout(3000, () => { console.log('timeout'); process.exit(0); });
s.on('data', () => { console.log(String(Date.now() - t0)); process.exit(0); });
s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });`;

/** Opens a connection, waits for "go" on stdin, then writes on it: what happened to it. */
const HOLD = `const s = require('net').connect(Number(process.argv[1]), '127.0.0.1');
s.on('data', () => console.log('open'));
s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });
s.on('close', () => { console.log('closed'); process.exit(0); });
process.stdin.once('data', () => s.write('x'));`;

function runIn(fn: FaultNet, host: string, script: string, port: number): Promise<string> {
  let out = '';
  const child = fn.spawnIn(host, () => spawn(process.execPath, ['-e', script, String(port)]));
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('exit', () => resolve(out.trim())));
}

function tryConnect(fn: FaultNet, host: string, port: number): Promise<string> {
  let out = '';
  const child = fn.spawnIn(host, () => spawn(process.execPath, ['-e', CONNECT, String(port)]));
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('exit', () => resolve(out.trim())));
}

function connectHere(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(700, () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('data', (d) => {
      s.destroy();
      resolve(`got ${d.toString()}`);
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? ''}`));
  });
}

describe('FaultNet: silent partitions by cgroup and port', () => {
  let fnet: FaultNet;
  let server: ChildProcess;
  let port = 0;
  before(async () => {
    [port] = (await freePorts(1)) as [number];
    server = spawn(process.execPath, [
      '-e',
      `require('net').createServer((s) => s.end('hi')).listen(${port}, '127.0.0.1')`,
    ]);
    await waitFor(async () => (await connectHere(port)) === 'got hi', {
      timeoutMs: 5000,
      what: 'echo server',
    });
    fnet = await FaultNet.create();
    fnet.enter('observer');
  });
  after(async () => {
    server.kill('SIGKILL');
    await fnet.close();
  });

  it('a cut drops the named host silently, leaves the others alone, and heals at once', async () => {
    assert.equal(await tryConnect(fnet, 'host-a', port), 'got hi');
    const cut = await fnet.cut('host-a', [port]);
    assert.equal(await tryConnect(fnet, 'host-a', port), 'timeout');
    assert.equal(await tryConnect(fnet, 'host-b', port), 'got hi');
    assert.equal(await connectHere(port), 'got hi');
    await cut.heal();
    assert.equal(await tryConnect(fnet, 'host-a', port), 'got hi');
  });

  it('a delay holds the traffic of the named host, resets its older connections once, and heals', async () => {
    const before = Number(await runIn(fnet, 'host-a', TIMED, port));
    assert.ok(before < 150, `${before} ms before the delay`);
    // A connection opened before the fault, used after it: reset, so its client reconnects.
    const held = fnet.spawnIn('host-a', () => spawn(process.execPath, ['-e', HOLD, String(port)]));
    let heldOut = '';
    held.stdout.on('data', (d: Buffer) => (heldOut += d.toString()));
    const heldExit = new Promise<void>((resolve) => held.once('exit', () => resolve()));
    await waitFor(() => heldOut.includes('open'), { timeoutMs: 5000, what: 'held connection open' });
    const d = await fnet.delay('host-a', [port], 300);
    const delayed = Number(await runIn(fnet, 'host-a', TIMED, port));
    assert.ok(delayed >= 300, `${delayed} ms with a 300 ms delay`);
    assert.equal(d.connections(), 1);
    const other = Number(await runIn(fnet, 'host-b', TIMED, port));
    assert.ok(other < 150, `${other} ms from another host`);
    held.stdin.write('go\n');
    await heldExit;
    assert.match(heldOut, /error ECONNRESET|closed/);
    await d.heal();
    const after = Number(await runIn(fnet, 'host-a', TIMED, port));
    assert.ok(after < 150, `${after} ms after healing`);
  });

  it('an isolated host loses everything but its own ports; the exempt observer still reaches them', async () => {
    const [other] = (await freePorts(1)) as [number];
    const otherServer = spawn(process.execPath, [
      '-e',
      `require('net').createServer((s) => s.end('yo')).listen(${other}, '127.0.0.1')`,
    ]);
    try {
      await waitFor(async () => (await connectHere(other)) === 'got yo', {
        timeoutMs: 5000,
        what: 'second server',
      });
      // host-a "serves" port; it must still reach it, lose `other`; host-b loses port.
      const iso = await fnet.isolate('host-a', [port], ['observer']);
      assert.equal(await tryConnect(fnet, 'host-a', port), 'got hi');
      assert.equal(await tryConnect(fnet, 'host-a', other), 'timeout');
      assert.equal(await tryConnect(fnet, 'host-b', port), 'timeout');
      assert.equal(await connectHere(port), 'got hi');
      await iso.heal();
      assert.equal(await tryConnect(fnet, 'host-b', port), 'got hi');
      assert.equal(await tryConnect(fnet, 'host-a', other), 'got yo');
    } finally {
      otherServer.kill('SIGKILL');
    }
  });
});
