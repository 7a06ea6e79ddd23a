import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ZkmhaError } from '../core/errors';
import { masterCheck, renderMetrics, replicaCheck, type AgentSnapshot } from './endpoints';

/**
 * The agent's HTTP listener: `GET /master`, `GET /replica` (for HAProxy `option httpchk`) and
 * `GET /metrics`. Answers come from the in-memory snapshot only, never from a query made on the
 * request path, so a health check costs microseconds and cannot hang on a hung mysqld.
 */
export interface AgentHttp {
  /** The real port (an ephemeral one when configured as 0). */
  readonly port: number;
  close(): Promise<void>;
}

export async function startAgentHttp(
  host: string,
  port: number,
  snapshot: () => AgentSnapshot,
): Promise<AgentHttp> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    let status: number;
    let body: string;
    let type = 'text/plain; charset=utf-8';
    switch (url) {
      case '/master':
        ({ status, body } = masterCheck(snapshot()));
        break;
      case '/replica':
        ({ status, body } = replicaCheck(snapshot()));
        break;
      case '/metrics':
        status = 200;
        body = renderMetrics(snapshot());
        type = 'text/plain; version=0.0.4; charset=utf-8';
        break;
      default:
        status = 404;
        body = 'not found\n';
    }
    res.writeHead(status, {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void =>
      reject(
        new ZkmhaError('BAD_CONFIG', `client: cannot listen on ${host}:${port} (${err.code ?? err.message})`),
      );
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const real = (server.address() as AddressInfo).port;
  return {
    port: real,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
