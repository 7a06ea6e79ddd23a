import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnMha, stopChild } from './cli';
import { freePort } from './ports';
import { waitFor } from './wait';

/** `mha web` as a child process on a free loopback port, ready once it answers. */
export interface WebProc {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  readonly logFile: string;
  get(p: string, init?: RequestInit): Promise<Response>;
  getJson<T = unknown>(p: string): Promise<T>;
  close(): Promise<void>;
}

export async function startWeb(configFile: string, dir: string): Promise<WebProc> {
  const port = await freePort();
  const logFile = path.join(dir, `web-${port}.log`);
  const child = spawnMha(['web', '--config', configFile, '--listen', `127.0.0.1:${port}`], logFile);
  const url = `http://127.0.0.1:${port}/`;
  const get = (p: string, init?: RequestInit): Promise<Response> => fetch(new URL(p, url), init);
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`mha web exited: ${fs.readFileSync(logFile, 'utf8')}`);
      return (await get('/api/groups')).ok;
    },
    { timeoutMs: 15_000, what: 'mha web to answer', intervalMs: 50 },
  );
  return {
    url,
    port,
    child,
    logFile,
    get,
    async getJson<T>(p: string): Promise<T> {
      const r = await get(p);
      if (!r.ok) throw new Error(`GET ${p}: ${r.status} ${await r.text()}`);
      return (await r.json()) as T;
    },
    close: () => stopChild(child),
  };
}
