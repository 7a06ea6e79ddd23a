import { performance } from 'node:perf_hooks';
import { metricsRoute, startHttpListener, type HttpAnswer, type HttpListener } from '../core/metrics';
import {
  masterCheck,
  masterExpectation,
  replicaCheck,
  replicaMaxLag,
  type AgentSnapshot,
  type EndpointAnswer,
} from './endpoints';
import type { ClientMetrics } from './metrics';
import { wsrepNotifyEvent } from './notify';

/**
 * The agent's HTTP listener: `GET /master?epoch=E&node=N`, `GET /replica?max_lag=S` (HAProxy
 * `option httpchk`, rendered by the router) and `GET /metrics`. Answers come from the in-memory
 * snapshot, never from a query made on the request path, so a check cannot hang on a hung mysqld.
 * One exception, bounded: an answer marked `retry` (an epoch not seen yet, a promotion the mysqld
 * checks have not caught up with) waits for the next change of the snapshot, at most
 * MASTER_SETTLE_MS — well inside HAProxy's `timeout check` — and is then given as it stands.
 */
export type AgentHttp = HttpListener;

/** Below the template's `timeout check 1s`, so a wait never turns into a check timeout. */
export const MASTER_SETTLE_MS = 600;

export interface AgentHttpDeps {
  readonly snapshot: () => AgentSnapshot;
  readonly metrics: ClientMetrics;
  /**
   * Resolves at the next change of the snapshot (a master/ record, a finished mysqld check) or after
   * `ms`; asks for both to be refreshed now.
   */
  readonly nextChange: (ms: number) => Promise<void>;
  /** GET /wsrep-notify (from `mha client notify`): the wsrep state changed, check now. */
  readonly onWsrepNotify?: (event: Readonly<Record<string, string>>) => void;
}

async function settle(deps: AgentHttpDeps, answer: () => EndpointAnswer): Promise<EndpointAnswer> {
  const deadline = performance.now() + MASTER_SETTLE_MS;
  let a = answer();
  while (a.retry === true) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    await deps.nextChange(left);
    a = answer();
  }
  return a;
}

export function startAgentHttp(host: string, port: number, deps: AgentHttpDeps): Promise<AgentHttp> {
  const timed =
    (endpoint: 'master' | 'replica', fn: (q: URLSearchParams) => Promise<HttpAnswer> | HttpAnswer) =>
    async (req: { query: URLSearchParams }): Promise<HttpAnswer> => {
      const t0 = performance.now();
      const a = await fn(req.query);
      deps.metrics.observeEndpoint(endpoint, a.status, (performance.now() - t0) / 1000);
      return a;
    };
  return startHttpListener('client', host, port, {
    '/master': timed('master', (q) => {
      const want = masterExpectation(q);
      if (want === null)
        return { status: 400, body: 'bad query: expected epoch=<integer>&node=<host:port>\n' };
      return settle(deps, () => masterCheck(deps.snapshot(), want));
    }),
    '/replica': timed('replica', (q) => {
      const maxLag = replicaMaxLag(q);
      if (maxLag === null) return { status: 400, body: 'bad query: expected max_lag=<seconds>\n' };
      return replicaCheck(deps.snapshot(), maxLag);
    }),
    '/metrics': metricsRoute(deps.metrics.registry),
    '/wsrep-notify': (req) => {
      const event = wsrepNotifyEvent(req.query);
      if (event === null) return { status: 400, body: 'bad query: expected wsrep_notify_cmd arguments\n' };
      deps.onWsrepNotify?.(event);
      return { status: 202, body: 'checking\n' };
    },
  });
}
