import { ZkmhaError } from '../core/errors';
import { encodeRecord, layoutSchema } from '../core/records';
import { aclForExisting, digestId, type AclRoles } from '../core/zk/acl';
import type { CliContext } from './context';

export interface InitResult {
  /** Directories created by this run. */
  readonly created: string[];
  /** With --acl: the nodes whose ACL was set (every node under the root), else null. */
  readonly aclNodes: number | null;
  /** With --acl: the digest user names per role (never a password or a digest). */
  readonly roles: { readonly full: string[]; readonly router: string[]; readonly client: string[] } | null;
}

/**
 * `mha init`: creates the root layout; running it again changes nothing. With `--acl`, sets the
 * per-role digest ACLs of core/zk/acl.ts on the root and on every node already under it (again
 * idempotent), so the nodes workers and commands create afterwards follow the same roles.
 */
export async function initLayout(
  ctx: CliContext,
  opts: { readonly acl?: boolean } = {},
): Promise<InitResult> {
  const roles = opts.acl === true ? rolesOf(ctx) : null;
  const created: string[] = [];
  for (const dir of ctx.paths.allDirs()) {
    if ((await ctx.zk.exists(dir)) === null) {
      await ctx.zk.mkdirp(dir);
      created.push(dir);
    }
  }
  if (roles === null) return { created, aclNodes: null, roles: null };
  const aclNodes = await applyAcls(ctx, roles);
  const users = (ids: readonly string[]): string[] => ids.map((id) => id.slice(0, id.indexOf(':')));
  return {
    created,
    aclNodes,
    roles: { full: users(roles.full), router: users(roles.router), client: users(roles.client) },
  };
}

function rolesOf(ctx: CliContext): AclRoles {
  const zk = ctx.cfg.zookeeper;
  if (zk.auth === undefined)
    throw new ZkmhaError(
      'BAD_CONFIG',
      `config: mha init --acl needs zookeeper.auth (the admin's own credential) in ${ctx.cfg.file}`,
    );
  if (zk.acl === undefined)
    throw new ZkmhaError(
      'BAD_CONFIG',
      `config: mha init --acl needs zookeeper.acl (the server, router and client credentials) in ${ctx.cfg.file}`,
    );
  const admin = digestId(zk.auth.user, zk.auth.password);
  return { full: [...new Set([admin, zk.acl.server])], router: [zk.acl.router], client: [zk.acl.client] };
}

/**
 * Top-down, so a node's children are reached through a parent that already carries the new ACL
 * (the admin keeps ALL on it). Ephemerals keep the identity of the process that owns them.
 */
async function applyAcls(ctx: CliContext, roles: AclRoles): Promise<number> {
  let count = 0;
  const walk = async (path: string): Promise<void> => {
    const cur = await ctx.zk.getAcl(path).catch((err: unknown) => {
      if (err instanceof ZkmhaError && err.code === 'ZK_NO_NODE') return null;
      throw err;
    });
    if (cur === null) return;
    await ctx.zk.setAcl(
      path,
      aclForExisting(ctx.paths, path, roles, cur.acl, cur.stat.ephemeralOwner !== '0'),
    );
    count++;
    for (const child of (await ctx.zk.childrenOrEmpty(path)).sort()) await walk(`${path}/${child}`);
  };
  // The roles first, in the root's value: every process that creates a node names them in its ACL.
  await ctx.zk.set(
    ctx.paths.root,
    encodeRecord(
      layoutSchema,
      { v: 1, acl: { full: [...roles.full], router: [...roles.router], client: [...roles.client] } },
      ctx.paths.root,
    ),
  );
  await walk(ctx.paths.root);
  return count;
}
