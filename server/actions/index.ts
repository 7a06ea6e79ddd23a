import type { Verdict } from '../detect';
import type { Action } from './context';
import { masterDead, resumeFailover } from './failover';
import { masterHealthy } from './healthy';
import { antiflapBlocked, heartbeatLost, noCandidate, whiteListed } from './incident';
import { operation } from './operation';
import { masterReadOnlyAction } from './read-only';
import { recordsInvalid } from './repair';

/**
 * The action of every verdict (server/detect.ts), all with one signature: the worker looks the
 * verdict up here, so a new verdict without an action does not compile.
 */
export const ACTIONS: { readonly [K in Verdict['kind']]: Action<Extract<Verdict, { kind: K }>> } = {
  'not-managed': async () => undefined,
  // The worker probes and asks detect again before dispatching: not reached.
  'needs-confirmation': async () => undefined,
  'operation-in-progress': operation,
  'master-healthy': masterHealthy,
  'master-read-only': masterReadOnlyAction,
  'records-invalid': recordsInvalid,
  'master-dead': masterDead,
  'resume-failover': resumeFailover,
  'white-listed': whiteListed,
  'heartbeat-lost-mysql-alive': heartbeatLost,
  'blocked-by-antiflap': antiflapBlocked,
  'no-candidate': noCandidate,
};

/** Runs the action of `verdict`. */
export function actOn<V extends Verdict>(verdict: V): Action<V> {
  return ACTIONS[verdict.kind as V['kind']] as unknown as Action<V>;
}

export { BUSY, type Evaluation, type GroupState, type WorkerContext, type WorkerOptions } from './context';
export { operationInProgress } from './operation';
