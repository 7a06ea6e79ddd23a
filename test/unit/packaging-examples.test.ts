import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { validateConfigDocument } from '../../core/config';

const EXAMPLES = path.resolve(__dirname, '..', '..', '..', 'packaging', 'examples');

/**
 * The shipped example configs pass the schema part of `mha config check` (the files they name
 * live on a production host, so only the schema is checked here), so they cannot rot when the
 * schema changes.
 */
describe('packaging/examples', () => {
  const expected: Record<string, 'server' | 'client' | 'router' | null> = {
    'admin.yaml': null,
    'server.yaml': 'server',
    'client.yaml': 'client',
    'router.yaml': 'router',
  };

  it('holds one example per role and nothing else', () => {
    assert.deepEqual(fs.readdirSync(EXAMPLES).sort(), Object.keys(expected).sort());
  });

  for (const [file, role] of Object.entries(expected)) {
    it(`${file} is accepted by the schema, names a 3-member ensemble, a credential and password files`, () => {
      const valid = validateConfigDocument(parseYaml(fs.readFileSync(path.join(EXAMPLES, file), 'utf8')));
      assert.ok(valid.ok, valid.ok ? '' : valid.problems.join('\n'));
      const raw = valid.raw;
      assert.equal(raw.zookeeper.hosts.split(',').length, 3);
      assert.ok(raw.zookeeper.auth?.passwordFile, 'ZooKeeper credential from a file');
      // Each role its own ZooKeeper credential; the admin's names every role's for `mha init --acl`.
      assert.equal(raw.zookeeper.auth?.user, `zkmha-${role ?? 'admin'}`);
      assert.equal(
        raw.zookeeper.acl !== undefined,
        role === null,
        `${file}: zookeeper.acl only for the admin`,
      );
      // Only the role's own section: a file per role, as the systemd units use them.
      for (const section of ['server', 'client', 'router'] as const)
        assert.equal(raw[section] !== undefined, section === role, `${file}: ${section} section`);
      // Secrets only by file.
      assert.equal(raw.mysql.password, undefined);
      assert.equal(raw.mysql.replicationPassword, undefined);
      if (role !== 'router') assert.ok(raw.mysql.passwordFile, `${file}: mysql.passwordFile`);
      if (role === 'server' || role === null)
        assert.ok(raw.mysql.replicationPasswordFile, `${file}: mysql.replicationPasswordFile`);
    });
  }
});
