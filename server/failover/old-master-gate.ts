import type { SemiSyncPolicy } from '../../core/semisync';

/**
 * When the candidate may be made writable (issue 11 hole 3), pure. An old master cut off from
 * ZooKeeper and from the workers, but still reaching its replicas, stays writable under its
 * agent's failsafe (design §4) until that agent's next check sees a replica detached — the
 * failover's drain stopped their IO threads. Until then it may acknowledge commits; making the
 * candidate writable meanwhile would give two masters that both acknowledge. So the promotion
 * waits out that re-check (settings.failsafeRecheckMs from the moment the IO threads were
 * stopped) unless something already proves the old master can acknowledge nothing:
 *  - it refused connections (mysqld dead) or was found read-only (self-fenced);
 *  - its agent still holds its ZooKeeper session (agent/<node> in the view): the failsafe does not
 *    apply to a connected agent, which fences a stray writable mysqld once master/ moves;
 *  - semi-sync `required` and every replica's IO thread was stopped: each commit waits for an
 *    acknowledgement that can no longer come;
 *  - semi-sync `on`, every IO thread stopped, and semiSyncTimeoutMs at least the re-check: its
 *    commits wait for an acknowledgement until after its agent fenced it.
 */
export type OldMasterGate =
  | { readonly kind: 'now'; readonly why: string }
  | { readonly kind: 'wait'; readonly untilMs: number; readonly why: string };

export interface OldMasterGateInput {
  /** How the old master was found dead (task detail `how`); undefined when not recorded. */
  readonly how: string | undefined;
  /** agent/<oldMaster> is in the view: its agent's session is alive. */
  readonly agentConnected: boolean;
  readonly policy: SemiSyncPolicy;
  readonly semiSyncTimeoutMs: number;
  readonly failsafeRecheckMs: number;
  /** When the drain had stopped the candidate's IO thread (ms epoch); null: not recorded. */
  readonly ioStoppedAt: number | null;
  /** Every other member's IO thread was stopped (none can still acknowledge for the old master). */
  readonly allIoStopped: boolean;
  readonly now: number;
}

export function oldMasterGate(i: OldMasterGateInput): OldMasterGate {
  if (i.how === 'refused') return { kind: 'now', why: 'the old master refused connections (mysqld down)' };
  if (i.how === 'self-fenced') return { kind: 'now', why: 'the old master was found read-only' };
  if (i.agentConnected)
    return { kind: 'now', why: "the old master's agent is connected to ZooKeeper (no failsafe)" };
  if (i.allIoStopped && i.policy === 'required')
    return { kind: 'now', why: 'semi-sync required and every replica stopped receiving' };
  if (i.allIoStopped && i.policy === 'on' && i.semiSyncTimeoutMs >= i.failsafeRecheckMs)
    return {
      kind: 'now',
      why: `semi-sync on, every replica stopped receiving, and commits wait ${i.semiSyncTimeoutMs} ms ≥ the failsafe re-check`,
    };
  // Not recorded (a task of an older worker): count from now, the safe side.
  const untilMs = (i.ioStoppedAt ?? i.now) + i.failsafeRecheckMs;
  const why = "the old master may be writable under its agent's failsafe until that agent's re-check";
  return untilMs <= i.now ? { kind: 'now', why: `${why} (already over)` } : { kind: 'wait', untilMs, why };
}
