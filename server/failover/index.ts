// The failover's public face: the worker creates and runs it, the metrics and resolve read its types.
export {
  createFailoverTask,
  handleFailure,
  runFailover,
  type FailoverDeps,
  type FailoverOutcome,
  type FailureContext,
} from './run';
export {
  FAILOVER_STEPS,
  commitGate,
  parseDetail,
  type CandidateCheck,
  type CommitGate,
  type FailoverDetail,
  type FailoverStep,
} from './plan';
