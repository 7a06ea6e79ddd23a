import * as path from 'node:path';
import type { PortPlan, SandboxLayout, SandboxNode } from './layout';

/**
 * The configuration files of the sandbox's processes (design §8): one per process, all sharing
 * the ZooKeeper and MySQL sections; passwords only by reference to 0600 files.
 */
export type SandboxRole =
  | { readonly kind: 'cli' }
  | {
      readonly kind: 'client';
      readonly node: SandboxNode;
      readonly binlogDir: string;
      readonly dataDir: string;
    }
  | { readonly kind: 'server'; readonly id: string }
  | { readonly kind: 'router'; readonly id: string; readonly template: string };

export const SESSION_TIMEOUT_MS = 4000;
export const ZK_ROOT = '/mha';

const q = (s: string): string => JSON.stringify(s);

export function configText(L: SandboxLayout, ports: PortPlan, role: SandboxRole): string {
  const lines = [
    'zookeeper:',
    `  hosts: ${q(`127.0.0.1:${ports.zookeeper}`)}`,
    `  root: ${q(ZK_ROOT)}`,
    `  sessionTimeoutMs: ${SESSION_TIMEOUT_MS}`,
    'mysql:',
    '  user: mha',
    `  passwordFile: ${q(path.join(L.secretsDir, 'mysql.pass'))}`,
    '  replicationUser: repl',
    `  replicationPasswordFile: ${q(path.join(L.secretsDir, 'repl.pass'))}`,
    '  connectTimeoutMs: 500',
  ];
  switch (role.kind) {
    case 'cli':
      break;
    case 'client':
      lines.push(
        'client:',
        `  node: ${q(role.node.node)}`,
        `  binlogDir: ${q(role.binlogDir)}`,
        `  dataDir: ${q(role.dataDir)}`,
        `  httpPort: ${role.node.httpPort}`,
        '  httpHost: 127.0.0.1',
        '  checkIntervalMs: 500',
        '  failAfter: 3',
      );
      break;
    case 'server':
      lines.push('server:', `  id: ${q(role.id)}`, '  reconcileIntervalMs: 2000');
      break;
    case 'router':
      lines.push(
        'router:',
        `  id: ${q(role.id)}`,
        `  haproxyConfig: ${q(L.haproxy.config)}`,
        `  template: ${q(role.template)}`,
        `  masterSocket: ${q(L.haproxy.masterSocket)}`,
        `  adminSocket: ${q(L.haproxy.adminSocket)}`,
        `  stateDir: ${q(L.haproxy.stateDir)}`,
        '  bindAddress: 127.0.0.1',
        '  reconcileIntervalMs: 2000',
      );
      break;
    default: {
      const never: never = role;
      throw new Error(`unknown role ${JSON.stringify(never)}`);
    }
  }
  lines.push('log:', '  level: info');
  return lines.join('\n') + '\n';
}

/** A `mariadb` client option file: TCP to 127.0.0.1, the password kept out of argv. */
export function clientOptionFile(user: string, password: string, database?: string): string {
  if (!/^[A-Za-z0-9]+$/.test(password)) throw new Error('sandbox passwords are alphanumeric');
  return [
    '[client]',
    'protocol=tcp',
    'host=127.0.0.1',
    `user=${user}`,
    `password=${password}`,
    ...(database !== undefined ? [`database=${database}`] : []),
    '',
  ].join('\n');
}

/** `<dir>/mha`: the admin CLI with the sandbox's configuration. */
export function mhaWrapperText(nodeBin: string, mhaJs: string, cliConfig: string): string {
  const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    '#!/bin/sh',
    '# zkmha sandbox: the admin CLI with the sandbox configuration.',
    `MHA_CONFIG=${sh(cliConfig)} exec ${sh(nodeBin)} ${sh(mhaJs)} "$@"`,
    '',
  ].join('\n');
}
