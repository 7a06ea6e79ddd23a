import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';

/**
 * packaging/systemd/ checked by `systemd-analyze verify`. verify insists that ExecStart's binary
 * exists, and the units name /usr/bin/mha (where `npm install -g` puts it with Debian's Node),
 * which a test machine lacks. So each template is verified as an instance (`mha-client@db1`)
 * copied to a temp dir with only its ExecStart binary replaced by this checkout's built mha run
 * by this Node; every other line is verified as shipped. The same check fails on a unit whose
 * binary is missing, so a pass means something.
 */
const UNITS = path.resolve(__dirname, '..', '..', '..', 'packaging', 'systemd');
const BUILT_MHA = path.resolve(__dirname, '..', '..', 'bin', 'mha.js');
const ROLES = ['client', 'server', 'router'] as const;

function verify(file: string): { code: number | null; out: string } {
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function unitLines(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  return keys;
}

describe('systemd units', () => {
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-systemd-'));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const role of ROLES) {
    it(`mha-${role}@.service passes systemd-analyze verify as an instance`, () => {
      const text = fs.readFileSync(path.join(UNITS, `mha-${role}@.service`), 'utf8');
      const shipped = `/usr/bin/mha ${role} --config /etc/zkmha/%i.yaml`;
      assert.deepEqual(unitLines(text).get('ExecStart'), [shipped]);
      const file = path.join(dir, `mha-${role}@db1.service`);
      fs.writeFileSync(
        file,
        text.replace(`ExecStart=/usr/bin/mha `, `ExecStart=${process.execPath} ${BUILT_MHA} `),
      );
      const r = verify(file);
      assert.equal(r.code, 0, r.out);
      assert.equal(r.out.trim(), '', `no warnings: ${r.out}`);
    });

    it(`mha-${role}@.service: restart on failure, its own user, a stop timeout, no reload, no secret`, () => {
      const text = fs.readFileSync(path.join(UNITS, `mha-${role}@.service`), 'utf8');
      const keys = unitLines(text);
      assert.deepEqual(keys.get('Restart'), ['on-failure']);
      assert.deepEqual(keys.get('User'), ['zkmha']);
      const stop = Number(keys.get('TimeoutStopSec')?.[0]);
      assert.ok(stop >= 10 && stop <= 60, `TimeoutStopSec ${stop}`);
      // No daemon handles SIGHUP (it would end the process), so no unit may claim a reload.
      assert.equal(keys.get('ExecReload'), undefined);
      const settings = text
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join('\n');
      assert.doesNotMatch(settings, /^Environment(File)?=/m, 'no environment (secrets come from 0600 files)');
      assert.doesNotMatch(settings, /password|secret|pass\b/i);
    });
  }

  it('verify fails on a unit whose ExecStart binary is missing (the check can fail)', () => {
    const text = fs.readFileSync(path.join(UNITS, 'mha-server@.service'), 'utf8');
    const file = path.join(dir, 'mha-server@broken.service');
    fs.writeFileSync(file, text.replace('ExecStart=/usr/bin/mha ', 'ExecStart=/nonexistent/mha '));
    const r = verify(file);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /\/nonexistent\/mha/);
  });
});
