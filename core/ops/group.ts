import { readGroupView, type GroupView, type ZkReader } from '../view';
import type { ZkPaths } from '../zk/paths';
import { refuse, step } from './step';

/** The group's view; refuses a group that does not exist or whose records are broken. */
export async function existingGroup(
  ctx: { readonly zk: ZkReader; readonly paths: ZkPaths },
  group: string,
  needs: {
    master?: boolean;
    route?: boolean;
    /** The command, when it applies to replication groups only (refused on a Galera group). */
    replicationOnly?: { command: string; instead: string };
  } = {},
): Promise<GroupView> {
  const view = await step(`read group ${group}`, () => readGroupView(ctx.zk, ctx.paths, group));
  const S = `read group ${group}`;
  if (view.invalid.meta) throw refuse(S, `${ctx.paths.metaGroup(group)} is invalid: ${problemsOf(view)}`);
  if (view.meta === null) throw refuse(S, `group '${group}' does not exist`);
  const only = needs.replicationOnly;
  if (only !== undefined && view.meta.flavor === 'galera')
    throw refuse(
      S,
      `'${group}' is a Galera group: ${only.command} applies to replication groups only (${only.instead})`,
    );
  if (needs.master === true && view.master === null)
    throw refuse(
      S,
      view.invalid.master
        ? `${ctx.paths.master(group)} is invalid: ${problemsOf(view)}`
        : `group '${group}' has no master record`,
    );
  if (needs.route === true && view.route === null)
    throw refuse(
      S,
      view.invalid.route
        ? `${ctx.paths.haproxy(group)} is invalid: ${problemsOf(view)}`
        : `group '${group}' has no route record`,
    );
  return view;
}

function problemsOf(view: GroupView): string {
  return view.problems.map((p) => p.message).join('; ');
}
