import type { CliContext } from './context';

/** `mha init`: creates the root layout; running it again changes nothing. */
export async function initLayout(ctx: CliContext): Promise<string[]> {
  const created: string[] = [];
  for (const dir of ctx.paths.allDirs()) {
    if ((await ctx.zk.exists(dir)) === null) {
      await ctx.zk.mkdirp(dir);
      created.push(dir);
    }
  }
  return created;
}
