import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Zk } from '../../core/zk/client';
import { TOP_LEVEL } from '../../core/zk/paths';
import { trackDir, untrackDir } from '../../devenv/reaper';
import { startZooKeeper, testLogger, type ZkCluster } from '../../devenv/zookeeper';

/**
 * The install path of the README, as an operator runs it: a clean copy of the sources (what
 * `git clone` gives: tracked and not-ignored files, no dist/, no node_modules/), `npm ci`,
 * `npm pack` (prepack builds), then `npm install -g` of the tarball into a fresh prefix and the
 * installed `mha` run with nothing but Node on the PATH. Every npm step runs --offline: the
 * tarball bundles its runtime dependencies, so installing it needs no registry, and `npm ci`
 * finds every tarball of the lockfile in the npm cache filled when this checkout ran `npm ci`.
 */
const REPO = path.resolve(__dirname, '..', '..', '..');
const { version } = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  version: string;
};

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(
  cmd: string,
  args: readonly string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not end within ${opts.timeoutMs} ms: ${stderr}`));
    }, opts.timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(cmd: string, args: readonly string[], cwd: string, timeoutMs = 240_000): Promise<Run> {
  const r = await run(cmd, args, { cwd, timeoutMs });
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} failed:\n${r.stderr.slice(-2000)}`);
  return r;
}

describe('install from the npm package', () => {
  let dir: string;
  let zkc: ZkCluster;
  let tarball: string;
  let mha: string;
  /** Only Node's own directory: no npx, no repo node_modules, no dev tools. */
  let bareEnv: NodeJS.ProcessEnv;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-package-'));
    trackDir(dir);
    zkc = await startZooKeeper();
    bareEnv = { PATH: path.dirname(process.execPath), HOME: dir };
  });

  after(async () => {
    await zkc?.close();
    if (dir) {
      fs.rmSync(dir, { recursive: true, force: true });
      untrackDir(dir);
    }
  });

  it('npm pack of a clean copy builds a package with the build output and templates, without tests', async () => {
    const src = path.join(dir, 'src');
    const files = (
      await ok('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], REPO)
    ).stdout
      .split('\0')
      .filter((f) => f !== '' && fs.existsSync(path.join(REPO, f)));
    for (const f of files) {
      fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      fs.copyFileSync(path.join(REPO, f), path.join(src, f));
    }
    assert.equal(fs.existsSync(path.join(src, 'dist')), false, 'a clean copy has no build output');
    await ok('npm', ['ci', '--offline', '--no-audit', '--no-fund'], src);
    const packed = await ok('npm', ['pack', '--offline', '--json', '--pack-destination', dir], src);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [
      { filename: string; files: { path: string }[] },
    ];
    tarball = path.join(dir, info.filename);
    assert.equal(info.filename, `zkmha-${version}.tgz`);
    const shipped = info.files.map((f) => f.path);
    for (const must of [
      'dist/bin/mha.js',
      'dist/core/config.js',
      'templates/haproxy.cfg.hbs',
      'package.json',
    ])
      assert.ok(shipped.includes(must), `${must} is in the package`);
    assert.ok(
      shipped.some((f) => f.startsWith('packaging/systemd/')),
      'the systemd units are in the package',
    );
    for (const never of [
      'test/',
      'bench/',
      'sandbox/',
      'devenv/',
      'dist/test/',
      'dist/bench/',
      'dist/sandbox/',
    ])
      assert.deepEqual(
        shipped.filter((f) => f.startsWith(never)),
        [],
        `nothing under ${never} is shipped`,
      );
    assert.deepEqual(
      shipped.filter((f) => !f.startsWith('node_modules/') && f.endsWith('.ts') && !f.endsWith('.d.ts')),
      [],
      'none of our TypeScript sources (bundled dependencies ship their own test files)',
    );
  });

  it('npm install -g of the tarball gives an mha that runs with only Node', async () => {
    const prefix = path.join(dir, 'prefix');
    await ok(
      'npm',
      ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball],
      dir,
    );
    mha = path.join(prefix, 'bin', 'mha');
    const v = await run(mha, ['--version'], { cwd: '/', env: bareEnv, timeoutMs: 30_000 });
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout.trim(), version);
  });

  it('the installed mha initialises a real ZooKeeper', async () => {
    const config = path.join(dir, 'mha.yaml');
    fs.writeFileSync(config, `zookeeper:\n  hosts: ${zkc.connectString}\n  root: /installed\n`);
    const r = await run(mha, ['init', '--config', config], { cwd: '/', env: bareEnv, timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^created /);
    const zk = await Zk.connect({ hosts: zkc.connectString, sessionTimeoutMs: 4000, logger: testLogger() });
    try {
      for (const top of TOP_LEVEL) assert.notEqual(await zk.exists(`/installed/${top}`), null, top);
    } finally {
      await zk.close();
    }
  });
});
