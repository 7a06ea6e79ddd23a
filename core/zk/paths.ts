import { assertGroupName, isNodeName, isProcessId } from '../names';
import { ZkmhaError } from '../errors';

/**
 * The only module that knows the znode layout (design §3). Every path is absolute and built from
 * validated names, so no unchecked string ever reaches ZooKeeper.
 */
export const TOP_LEVEL = [
  'meta_group',
  'meta_host',
  'online',
  'agent',
  'master',
  'haproxy',
  'white',
  'lock',
  'task',
  'watch_down',
  'slave_down',
  'rejoin',
  'meta_router',
  'servers',
  'history',
  'accept_loss',
] as const;
export type TopLevel = (typeof TOP_LEVEL)[number];

function node(n: string): string {
  if (!isNodeName(n)) throw new ZkmhaError('BAD_NAME', `invalid node '${n}' (expected host:port)`);
  return n;
}

function id(s: string): string {
  if (!isProcessId(s)) throw new ZkmhaError('BAD_NAME', `invalid id '${s}'`);
  return s;
}

export const ALERT_KINDS_RE = /^[a-z0-9][a-z0-9-]{0,40}$/;

export class ZkPaths {
  readonly root: string;

  constructor(root: string) {
    if (!/^(\/[A-Za-z0-9_.-]+)+$/.test(root))
      throw new ZkmhaError('BAD_CONFIG', `config: zookeeper.root '${root}' is not an absolute znode path`);
    this.root = root;
  }

  dir(top: TopLevel): string {
    return `${this.root}/${top}`;
  }

  /** Every persistent directory `mha init` creates. */
  allDirs(): string[] {
    return [this.root, ...TOP_LEVEL.map((t) => this.dir(t))];
  }

  metaGroup(group: string): string {
    return `${this.dir('meta_group')}/${assertGroupName(group)}`;
  }
  metaHost(n: string): string {
    return `${this.dir('meta_host')}/${node(n)}`;
  }
  online(n: string): string {
    return `${this.dir('online')}/${node(n)}`;
  }
  agent(n: string): string {
    return `${this.dir('agent')}/${node(n)}`;
  }
  master(group: string): string {
    return `${this.dir('master')}/${assertGroupName(group)}`;
  }
  haproxy(group: string): string {
    return `${this.dir('haproxy')}/${assertGroupName(group)}`;
  }
  white(group: string): string {
    return `${this.dir('white')}/${assertGroupName(group)}`;
  }
  lockDir(group: string): string {
    return `${this.dir('lock')}/${assertGroupName(group)}`;
  }
  /** Prefix of the lock recipe's ephemeral sequential nodes. */
  lockPrefix(group: string): string {
    return `${this.lockDir(group)}/lock-`;
  }
  task(group: string): string {
    return `${this.dir('task')}/${assertGroupName(group)}`;
  }
  /** `watch_down/<group>` or, with a kind, `watch_down/<group>__<kind>`. */
  watchDown(group: string, kind?: string): string {
    const g = assertGroupName(group);
    if (kind === undefined) return `${this.dir('watch_down')}/${g}`;
    if (!ALERT_KINDS_RE.test(kind)) throw new ZkmhaError('BAD_NAME', `invalid alert kind '${kind}'`);
    return `${this.dir('watch_down')}/${g}__${kind}`;
  }
  slaveDownDir(group: string): string {
    return `${this.dir('slave_down')}/${assertGroupName(group)}`;
  }
  slaveDown(group: string, n: string): string {
    return `${this.slaveDownDir(group)}/${node(n)}`;
  }
  rejoin(n: string): string {
    return `${this.dir('rejoin')}/${node(n)}`;
  }
  metaRouter(routerId: string): string {
    return `${this.dir('meta_router')}/${id(routerId)}`;
  }
  server(serverId: string): string {
    return `${this.dir('servers')}/${id(serverId)}`;
  }
  /** accept_loss/<group>: an operator's one-shot "promote despite unanswered replicas" (core/records). */
  acceptLoss(group: string): string {
    return `${this.dir('accept_loss')}/${assertGroupName(group)}`;
  }
  historyDir(group: string): string {
    return `${this.dir('history')}/${assertGroupName(group)}`;
  }
  historyPrefix(group: string): string {
    return `${this.historyDir(group)}/event-`;
  }
}

/** Splits a `watch_down/` child name into group and optional kind. */
export function parseWatchDownName(name: string): { group: string; kind?: string } | null {
  // Alert kinds never contain '_', so the last '__' separates them from the group.
  const i = name.lastIndexOf('__');
  const group = i < 0 ? name : name.slice(0, i);
  const kind = i < 0 ? undefined : name.slice(i + 2);
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(group)) return null;
  if (kind !== undefined && !ALERT_KINDS_RE.test(kind)) return null;
  return kind === undefined ? { group } : { group, kind };
}
