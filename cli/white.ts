import * as os from 'node:os';
import { isZkmhaError } from '../core/errors';
import { encodeRecord, whiteSchema, type WhiteRecord } from '../core/records';
import type { CliContext } from './context';
import { existingGroup } from './lookup';
import { step } from './output';

/** `mha setwhite` / `mha unwhite`: maintenance on/off (no automatic failover while on). */
export function operator(): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry
  }
  return `${user}@${os.hostname()}`.slice(0, 256);
}

export async function setWhite(
  ctx: CliContext,
  group: string,
  reason: string | undefined,
): Promise<WhiteRecord> {
  await existingGroup(ctx, group);
  const p = ctx.paths.white(group);
  const rec: WhiteRecord = { v: 1, reason: reason ?? 'maintenance', by: operator(), at: Date.now() };
  const data = encodeRecord(whiteSchema, rec, p);
  await step(`write ${p}`, async () => {
    if ((await ctx.zk.exists(p)) === null) {
      await ctx.zk.mkdirp(ctx.paths.dir('white'));
      try {
        await ctx.zk.create(p, data, 'persistent');
        return;
      } catch (err) {
        if (!isZkmhaError(err, 'ZK_NODE_EXISTS')) throw err;
      }
    }
    await ctx.zk.set(p, data, -1);
  });
  return rec;
}

/** Returns whether the flag was set. */
export async function unWhite(ctx: CliContext, group: string): Promise<boolean> {
  await existingGroup(ctx, group);
  const p = ctx.paths.white(group);
  return step(`delete ${p}`, () => ctx.zk.deleteIfExists(p));
}
