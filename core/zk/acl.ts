import { createHash } from 'node:crypto';
import type { Secret } from '../config';
import { decodeRecord, layoutSchema } from '../records';
import type { ZkPaths } from './paths';

/**
 * Per-role ZooKeeper ACLs (`mha init --acl`): the one place that decides the ACL of every path of
 * the layout (design §3), for `mha init --acl` and for every node a process creates later. The
 * roles' digest identities are recorded in the root's value (records.ts layoutSchema), which
 * every role may read, so each process needs only its own credential.
 *
 * ZooKeeper checks a permission on the node itself (READ, WRITE = setData, ADMIN = setACL) or, for
 * CREATE and DELETE, on the PARENT; it has no per-child create rule and no inheritance. So:
 *  - servers and the admin CLI ('full') hold every right on every node;
 *  - routers and clients READ every node;
 *  - clients may CREATE and DELETE children of `online/` and `agent/` (their ephemerals), routers
 *    children of `meta_router/` and `watch_down/` (their status and their `<group>__router` alert);
 *  - a node a client or router creates for itself (`online/<node>`, `agent/<node>`,
 *    `meta_router/<id>`) also grants ALL to the creating PROCESS: a digest identity made of a
 *    random password held only in that process's memory (`ownIdentity`). Another client, holding
 *    the same role credential, cannot setData on it;
 *  - `watch_down/<group>__router` is writable by every router (any router raises and updates it).
 * Limits, from ZooKeeper's model: a role with CREATE/DELETE on a directory can delete any child of
 * it and create any child that does not exist (a client credential can delete another node's
 * `online/` entry, which a server treats as that node being down, or squat a name not yet
 * published); `exists` needs no permission, so an unauthenticated session still learns whether a
 * path exists (never its data or children).
 */
export const PERM = { READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 } as const;

export interface AclEntry {
  readonly scheme: 'world' | 'digest';
  /** 'anyone' for world; `user:base64(sha1(user:password))` for digest. */
  readonly id: string;
  /** Bit set of PERM. */
  readonly perms: number;
}

export const OPEN_ACL: readonly AclEntry[] = [{ scheme: 'world', id: 'anyone', perms: PERM.ALL }];

/** The digest identities of each role (never passwords). */
export interface AclRoles {
  /** Servers and the admin CLI: ALL everywhere. */
  readonly full: readonly string[];
  readonly router: readonly string[];
  readonly client: readonly string[];
}

/** ZooKeeper's digest identity for user/password: `user:base64(sha1("user:password"))`. */
export function digestId(user: string, password: Secret): string {
  return `${user}:${digestOf(user, password.reveal())}`;
}

export function digestOf(user: string, password: string): string {
  return createHash('sha1').update(`${user}:${password}`, 'utf8').digest('base64');
}

/** Digest user names ZooKeeper can carry: the id is split at the first ':'. */
export const DIGEST_USER_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
export const DIGEST_RE = /^[A-Za-z0-9+/]{27}=$/;

type Place =
  | { readonly kind: 'plain' }
  | { readonly kind: 'dir'; readonly top: string }
  /** A node its creating client/router owns (online/<node>, agent/<node>, meta_router/<id>). */
  | { readonly kind: 'own' }
  | { readonly kind: 'router-alert' };

const CLIENT_DIRS = new Set(['online', 'agent']);
const ROUTER_DIRS = new Set(['meta_router', 'watch_down']);
const OWN_CHILDREN = new Set(['online', 'agent', 'meta_router']);

function placeOf(paths: ZkPaths, path: string): Place {
  const prefix = `${paths.root}/`;
  if (!path.startsWith(prefix)) return { kind: 'plain' };
  const parts = path.slice(prefix.length).split('/');
  const top = parts[0]!;
  if (parts.length === 1) return { kind: 'dir', top };
  if (parts.length === 2 && OWN_CHILDREN.has(top)) return { kind: 'own' };
  if (parts.length === 2 && top === 'watch_down' && parts[1]!.endsWith('__router'))
    return { kind: 'router-alert' };
  return { kind: 'plain' };
}

function collect(grants: ReadonlyArray<readonly [readonly string[], number]>): AclEntry[] {
  const perms = new Map<string, number>();
  for (const [ids, p] of grants) for (const id of ids) perms.set(id, (perms.get(id) ?? 0) | p);
  return [...perms].map(([id, p]) => ({ scheme: 'digest', id, perms: p }));
}

/**
 * The ACL of `path` under `roles`. `own` is the creating process's own identity (ownIdentity), for
 * the nodes a client or router publishes for itself; null when the caller is not their owner
 * (`mha init --acl` re-applying ACLs).
 */
export function aclFor(paths: ZkPaths, path: string, roles: AclRoles, own: string | null): AclEntry[] {
  const base: Array<readonly [readonly string[], number]> = [
    [roles.full, PERM.ALL],
    [roles.router, PERM.READ],
    [roles.client, PERM.READ],
  ];
  const place = placeOf(paths, path);
  switch (place.kind) {
    case 'plain':
      return collect(base);
    case 'dir':
      if (CLIENT_DIRS.has(place.top)) return collect([...base, [roles.client, PERM.CREATE | PERM.DELETE]]);
      if (ROUTER_DIRS.has(place.top)) return collect([...base, [roles.router, PERM.CREATE | PERM.DELETE]]);
      return collect(base);
    case 'own':
      return collect(own === null ? base : [...base, [[own], PERM.ALL]]);
    case 'router-alert':
      return collect([...base, [roles.router, PERM.WRITE]]);
    default: {
      const never: never = place;
      throw new Error(`unknown place ${JSON.stringify(never)}`);
    }
  }
}

/**
 * What `mha init --acl` sets on a node that already exists: the ACL of its path, and for an
 * ephemeral node also the identities of its owning process already on it (so a running client
 * keeps updating its own node).
 */
export function aclForExisting(
  paths: ZkPaths,
  path: string,
  roles: AclRoles,
  current: readonly AclEntry[],
  ephemeral: boolean,
): AclEntry[] {
  const acl = aclFor(paths, path, roles, null);
  if (!ephemeral || placeOf(paths, path).kind !== 'own') return acl;
  const known = new Set([...roles.full, ...roles.router, ...roles.client]);
  const owners = current.filter((e) => e.scheme === 'digest' && !known.has(e.id) && e.perms === PERM.ALL);
  return [...acl, ...owners];
}

/** The roles `mha init --acl` recorded in the layout root's value (null: ACLs not set up). */
export function rolesFromRoot(data: Buffer | null, path: string): AclRoles | null {
  if (data === null || data.length === 0) return null;
  return decodeRecord(layoutSchema, data, path).acl;
}
