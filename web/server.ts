import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { listAlerts } from '../core/alerts';
import { errorMessage } from '../core/errors';
import { readHistoryEntries } from '../core/history';
import type { Logger } from '../core/log';
import { isGroupName } from '../core/names';
import { readStatus, type StatusSource } from '../core/status';
import type { StatusHub } from './hub';
import type { GroupDetail, GroupSummary } from './model';

/**
 * The read-only HTTP side of `mha web`: static page files, a JSON API that mirrors
 * `mha status --json`, `mha history --json` and `mha alerts --json`, and server-sent events fed by
 * the hub's watches. Only GET and HEAD (405 otherwise); a group name in a URL is validated like
 * everywhere else (400); nothing but the status model is served (no config, no credentials).
 *
 *   GET /                          overview page          GET /group/<g>               group page
 *   GET /api/groups                summaries (overview)   GET /api/events              SSE: overview
 *   GET /api/status[?mysql=0]      = mha status --json    GET /api/alerts              = mha alerts --json
 *   GET /api/groups/<g>/status     = mha status <g> --json
 *   GET /api/groups/<g>/history    = mha history <g> --json
 *   GET /api/groups/<g>/alerts     mha alerts --json, this group's entries
 *   GET /api/groups/<g>/events     SSE: the group's detail on every change
 */
export interface WebServerDeps {
  readonly hub: StatusHub;
  readonly source: StatusSource;
  /** Default for `?mysql=` (read positions from every member, as `mha status` does). */
  readonly readMysql: boolean;
  readonly log: Logger;
  /** Folder with the page's files (served by name, from a list read at start). */
  readonly staticDir: string;
  /** Keep-alive comment on idle event streams (default 20 s; proxies drop silent connections). */
  readonly keepAliveMs?: number;
  /** Most event streams at once (default 256). */
  readonly maxStreams?: number;
}

export interface WebServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

function loadStatic(dir: string): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of fs.readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type !== undefined) files.set(name, { body: fs.readFileSync(path.join(dir, name)), type });
  }
  return files;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.');
}

export async function startWebServer(deps: WebServerDeps, host: string, port: number): Promise<WebServer> {
  const files = loadStatic(deps.staticDir);
  const streams = new Set<http.ServerResponse>();
  const maxStreams = deps.maxStreams ?? 256;
  let boundPort = port;

  const groupParam = (raw: string): string => {
    let g: string;
    try {
      g = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, 'invalid group name (bad percent-encoding)');
    }
    if (!isGroupName(g)) throw new HttpError(400, `invalid group name '${g.slice(0, 80)}'`);
    return g;
  };
  const mysqlParam = (q: URLSearchParams): boolean => {
    const v = q.get('mysql');
    if (v === null) return deps.readMysql;
    if (v === '0' || v === 'false') return false;
    if (v === '1' || v === 'true') return true;
    throw new HttpError(400, 'mysql must be 0 or 1');
  };
  const existing = async (g: string): Promise<string> => {
    if ((await deps.source.zk.exists(deps.source.paths.metaGroup(g))) === null)
      throw new HttpError(404, `group '${g}' does not exist`);
    return g;
  };

  const json = (res: http.ServerResponse, head: boolean, status: number, value: unknown): void => {
    const body = JSON.stringify(value, null, 2) + '\n';
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    res.end(head ? undefined : body);
  };
  const file = (res: http.ServerResponse, head: boolean, name: string): void => {
    const f = files.get(name);
    if (f === undefined) throw new HttpError(404, 'not found');
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': f.type,
      'content-length': f.body.length,
      'cache-control': 'no-cache',
    });
    res.end(head ? undefined : f.body);
  };

  const openStream = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): ((event: string, data: unknown) => void) => {
    if (streams.size >= maxStreams) throw new HttpError(503, 'too many event streams');
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    res.write('retry: 1000\n\n');
    streams.add(res);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), deps.keepAliveMs ?? 20_000);
    keepAlive.unref();
    req.socket.setTimeout(0);
    res.once('close', () => {
      clearInterval(keepAlive);
      streams.delete(res);
    });
    return (event, data) => {
      if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
  };

  const overviewStream = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const send = openStream(req, res);
    const onSummary = (s: GroupSummary): void => send('summary', s);
    const onRemoved = (g: string): void => send('removed', { group: g });
    const onProcesses = (): void => send('processes', deps.hub.processes());
    deps.hub.on('summary', onSummary);
    deps.hub.on('removed', onRemoved);
    deps.hub.on('processes', onProcesses);
    res.once('close', () => {
      deps.hub.off('summary', onSummary);
      deps.hub.off('removed', onRemoved);
      deps.hub.off('processes', onProcesses);
    });
    send('snapshot', { groups: deps.hub.summaries(), ...deps.hub.processes() });
  };

  const groupStream = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    g: string,
  ): Promise<void> => {
    await existing(g);
    const { detail, unsubscribe } = await deps.hub.subscribe(g);
    if (req.destroyed) return unsubscribe();
    let send: (event: string, data: unknown) => void;
    try {
      send = openStream(req, res);
    } catch (err) {
      unsubscribe();
      throw err;
    }
    const onDetail = (d: GroupDetail): void => {
      if (d.group === g) send('detail', d);
    };
    const onRemoved = (removed: string): void => {
      if (removed === g) send('removed', { group: g });
    };
    deps.hub.on('detail', onDetail);
    deps.hub.on('removed', onRemoved);
    res.once('close', () => {
      deps.hub.off('detail', onDetail);
      deps.hub.off('removed', onRemoved);
      unsubscribe();
    });
    send('detail', detail);
  };

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ error: `method ${req.method ?? '?'} not allowed: this service is read-only` }) +
          '\n',
      );
      return;
    }
    // A page on another site must not read the status through a DNS name that points here.
    const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    if (isLoopback(host) && !isLoopback(hostHeader))
      throw new HttpError(403, `host '${hostHeader.slice(0, 80)}' not allowed on a loopback listener`);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = url.pathname;
    const parts = p.split('/').filter((s) => s !== '');
    const src = deps.source;

    if (p === '/' || p === '/index.html') return file(res, head, 'index.html');
    if (parts[0] === 'group' && parts.length === 2) {
      groupParam(parts[1]!);
      return file(res, head, 'group.html');
    }
    if (parts[0] === 'static' && parts.length === 2) return file(res, head, parts[1]!);
    if (parts[0] !== 'api') throw new HttpError(404, 'not found');

    if (parts.length === 2) {
      switch (parts[1]) {
        case 'groups':
          return json(res, head, 200, { groups: deps.hub.summaries(), ...deps.hub.processes() });
        case 'status':
          return json(res, head, 200, await readStatus(src, { mysql: mysqlParam(url.searchParams) }));
        case 'alerts':
          return json(res, head, 200, await listAlerts(src));
        case 'events':
          return overviewStream(req, res);
      }
    }
    if (parts[1] === 'groups' && parts.length === 4) {
      const g = groupParam(parts[2]!);
      switch (parts[3]) {
        case 'status':
          await existing(g);
          return json(
            res,
            head,
            200,
            await readStatus(src, { group: g, mysql: mysqlParam(url.searchParams) }),
          );
        case 'history':
          await existing(g);
          return json(res, head, 200, await readHistoryEntries(src.zk, src.paths, g));
        case 'alerts':
          return json(res, head, 200, await listAlerts(src, g));
        case 'events':
          return groupStream(req, res, g);
      }
    }
    throw new HttpError(404, 'not found');
  };

  const server = http.createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) deps.log.warn({ url: req.url, err: errorMessage(err) }, 'web: request failed');
      if (res.headersSent) return void res.end();
      json(res, req.method === 'HEAD', status, { error: errorMessage(err) });
    });
  });
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  boundPort = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shownHost}:${boundPort}/`,
    port: boundPort,
    close: async () => {
      for (const s of streams) s.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
