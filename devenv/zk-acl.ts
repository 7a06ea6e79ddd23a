import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * ZooKeeper credentials of the test worlds that run with per-role ACLs (`mha init --acl`): one
 * digest user per role, each password in its own 0600 file, named by that role's config only
 * (the admin's config also names the others' files under `zookeeper.acl`, as an operator's does).
 */
export const ZK_TEST_CREDENTIALS = {
  admin: { user: 'zkmha-admin', password: 'zk-admin-test-secret' },
  server: { user: 'zkmha-server', password: 'zk-server-test-secret' },
  router: { user: 'zkmha-router', password: 'zk-router-test-secret' },
  client: { user: 'zkmha-client', password: 'zk-client-test-secret' },
} as const;
export type ZkRole = keyof typeof ZK_TEST_CREDENTIALS;

/** Writes the password file of `role` into `dir` (0600) and returns its path. */
export function zkPasswordFile(dir: string, role: ZkRole): string {
  const file = path.join(dir, `zk-${role}.pass`);
  if (!fs.existsSync(file)) fs.writeFileSync(file, ZK_TEST_CREDENTIALS[role].password, { mode: 0o600 });
  return file;
}

/**
 * The lines under `zookeeper:` (two-space indented) for a config of `role`: its own credential;
 * for the admin also every role's, for `mha init --acl`.
 */
export function zkAuthLines(dir: string, role: ZkRole): string[] {
  const cred = (r: ZkRole, indent: string): string[] => [
    `${indent}user: ${JSON.stringify(ZK_TEST_CREDENTIALS[r].user)}`,
    `${indent}passwordFile: ${JSON.stringify(zkPasswordFile(dir, r))}`,
  ];
  const lines = ['  auth:', ...cred(role, '    ')];
  if (role === 'admin')
    lines.push(
      '  acl:',
      ...(['server', 'router', 'client'] as const).flatMap((r) => [`    ${r}:`, ...cred(r, '      ')]),
    );
  return lines;
}
