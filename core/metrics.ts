import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ZkmhaError, errorMessage } from './errors';

/**
 * What every daemon shares for `/metrics` (design §11): a prom-client registry per process, with
 * Node's process metrics under `zkmha_<role>_`, and one small HTTP listener that serves it (and,
 * for the heartbeat client, its health endpoints). Roles create their own metrics on the registry;
 * nothing here knows what they measure.
 */
export type Role = 'client' | 'server' | 'router';

/** Durations of whole operations (failover, switchover): 10 ms to 2 min. */
export const OPERATION_BUCKETS: readonly number[] = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120,
];
/** Durations of quick things (a router apply, a health check, a step): 0.5 ms to 5 s. */
export const FAST_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

export function createRegistry(role: Role): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: `zkmha_${role}_` });
  return registry;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly type?: string;
}

export interface HttpRequest {
  readonly path: string;
  readonly query: URLSearchParams;
}

export type HttpRoute = (req: HttpRequest) => HttpAnswer | Promise<HttpAnswer>;

export interface HttpListener {
  /** The real port (an ephemeral one when configured as 0). */
  readonly port: number;
  close(): Promise<void>;
}

/** The `/metrics` route of a registry. */
export function metricsRoute(registry: Registry): HttpRoute {
  return async () => ({ status: 200, body: await registry.metrics(), type: registry.contentType });
}

/**
 * A GET/HEAD-only HTTP listener with a fixed route table. Answers close the connection (HAProxy's
 * checks and Prometheus' scrapes open one per request anyway); an unknown path is 404, a route that
 * throws is 500 with one line.
 */
export async function startHttpListener(
  what: string,
  host: string,
  port: number,
  routes: Readonly<Record<string, HttpRoute>>,
): Promise<HttpListener> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (a: HttpAnswer): void => {
      res.writeHead(a.status, {
        'content-type': a.type ?? 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(a.body),
        connection: 'close',
      });
      res.end(req.method === 'HEAD' ? undefined : a.body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const route = Object.prototype.hasOwnProperty.call(routes, url.pathname)
      ? routes[url.pathname]
      : undefined;
    if (route === undefined) {
      send({ status: 404, body: 'not found\n' });
      return;
    }
    Promise.resolve()
      .then(() => route({ path: url.pathname, query: url.searchParams }))
      .then(send, (err: unknown) => send({ status: 500, body: `${errorMessage(err).split('\n')[0]}\n` }));
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void =>
      reject(
        new ZkmhaError(
          'BAD_CONFIG',
          `${what}: cannot listen on ${host}:${port} (${err.code ?? err.message})`,
        ),
      );
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
