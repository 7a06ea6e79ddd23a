import type { SemiSyncPolicy } from './semisync';

/**
 * Whether a failover may promote although some replicas did not answer (issue 10 §2) — a pure
 * function of what the choice learned, table-tested in test/unit/candidate-safety.test.ts.
 *
 * With MariaDB semi-sync a commit is acknowledged once ONE replica has it (10.11 has no
 * wait-for-slave-count), so a failover that did not hear from every replica cannot know that the
 * one it promotes holds every acknowledged commit. Two things make it provable: every replica
 * answered (the choice then takes the most advanced and catches up from it), or the old master's
 * own binlog — which holds every commit it acknowledged (AFTER_SYNC) — was appended to the
 * candidate through its agent (server/failover/append.ts). Otherwise the group's policy decides:
 * `required` does not promote until a replica answers or a person accepts the risk; `on` and
 * `off` promote and the history says from which replicas transactions may be missing.
 *
 * The decision is taken twice: at the choice (where the old master's binlog is only `reachable`:
 * the append is still to come) and, when it depended on the append, again after it.
 */

/** What the old master's binlog can contribute, as far as the failover knows. */
export type OldMasterBinlog =
  /** Its agent is alive and reports its mysqld down: the append step will ask it. */
  | 'reachable'
  /** No agent, or an agent that does not report its mysqld down: nothing to append from. */
  | 'unreachable'
  /** The agent appended everything after the candidate's position (possibly nothing). */
  | 'appended'
  /** The append was skipped, failed or timed out. */
  | 'append-failed';

export interface Unanswered {
  readonly node: string;
  /** The last error asking it (timeout, refused, …). */
  readonly error: string;
}

export interface SafetyInput {
  readonly policy: SemiSyncPolicy;
  /** Replicas that had to answer and did not, after waiting settings.replicaWaitMs. */
  readonly unanswered: readonly Unanswered[];
  readonly oldMasterBinlog: OldMasterBinlog;
  /** A person's `mha failover <group> --accept-loss` for this failover's epoch, if any. */
  readonly acceptLoss: { readonly by: string; readonly reason: string; readonly at: number } | null;
}

/** Names of the rules; the history records which one applied. */
export type SafetyRule =
  | 'all-replicas-answered'
  | 'old-master-binlog-appended'
  | 'awaiting-append'
  | 'operator-accepted-loss'
  | 'semi-sync-on-risk'
  | 'semi-sync-off-risk'
  | 'semi-sync-required-blocks';

export type CandidateSafety =
  /** Every acknowledged commit is provably on the candidate (after catch-up / append). */
  | { readonly kind: 'safe'; readonly rule: 'all-replicas-answered' | 'old-master-binlog-appended' }
  /** Go on; decide again after the append step, which may still make it safe. */
  | { readonly kind: 'pending'; readonly rule: 'awaiting-append'; readonly unanswered: readonly Unanswered[] }
  /** Promote; acknowledged commits held only by `missingFrom` may be missing. */
  | {
      readonly kind: 'risk';
      readonly rule: 'operator-accepted-loss' | 'semi-sync-on-risk' | 'semi-sync-off-risk';
      readonly missingFrom: readonly string[];
      readonly acceptedBy?: string;
    }
  /** Do not promote (policy `required`): alert `failover-blocked` and try again. */
  | {
      readonly kind: 'blocked';
      readonly rule: 'semi-sync-required-blocks';
      readonly unanswered: readonly Unanswered[];
    };

export function candidateSafety(i: SafetyInput): CandidateSafety {
  if (i.unanswered.length === 0) return { kind: 'safe', rule: 'all-replicas-answered' };
  if (i.oldMasterBinlog === 'appended') return { kind: 'safe', rule: 'old-master-binlog-appended' };
  const nodes = i.unanswered.map((u) => u.node);
  if (i.oldMasterBinlog === 'reachable')
    return { kind: 'pending', rule: 'awaiting-append', unanswered: i.unanswered };
  if (i.acceptLoss !== null)
    return { kind: 'risk', rule: 'operator-accepted-loss', missingFrom: nodes, acceptedBy: i.acceptLoss.by };
  switch (i.policy) {
    case 'required':
      return { kind: 'blocked', rule: 'semi-sync-required-blocks', unanswered: i.unanswered };
    case 'on':
      return { kind: 'risk', rule: 'semi-sync-on-risk', missingFrom: nodes };
    case 'off':
      return { kind: 'risk', rule: 'semi-sync-off-risk', missingFrom: nodes };
  }
}

/** One line for the log, the alert and history.lostTransactions. */
export function describeSafety(s: CandidateSafety): string {
  switch (s.kind) {
    case 'safe':
      return s.rule === 'all-replicas-answered'
        ? 'every replica answered: the candidate holds every acknowledged transaction'
        : "the old master's binlog was appended: the candidate holds every acknowledged transaction";
    case 'pending':
      return `${s.unanswered.map((u) => u.node).join(', ')} did not answer; the append from the old master's binlog decides`;
    case 'risk':
      return (
        `transactions acknowledged only by ${s.missingFrom.join(', ')} (unanswered) may be missing` +
        (s.rule === 'operator-accepted-loss'
          ? `; promoted as accepted by ${s.acceptedBy ?? 'an operator'}`
          : s.rule === 'semi-sync-on-risk'
            ? '; promoted under semi-sync policy on'
            : '; promoted under semi-sync policy off (asynchronous: acknowledged transactions were never guaranteed)')
      );
    case 'blocked':
      return (
        `not promoting: ${s.unanswered.map((u) => `${u.node} (${u.error})`).join(', ')} did not answer and ` +
        "semi-sync policy is required; waiting for them, or for 'mha failover <group> --accept-loss'"
      );
  }
}

/**
 * The replicas a failover must hear from: every member but the old master and nodes awaiting
 * rejoin (old masters of earlier epochs: they replicate from nobody, so they acknowledged nothing
 * of the master being replaced).
 */
export function mustAnswer(
  members: ReadonlyArray<{ readonly node: string; readonly rejoin: unknown }>,
  oldMaster: string,
): string[] {
  return members.filter((m) => m.node !== oldMaster && m.rejoin === null).map((m) => m.node);
}
