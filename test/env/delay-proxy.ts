import * as net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 that forwards to 127.0.0.1:`target` and holds every chunk for
 * `delayMs` in each direction, order kept — network delay where the kernel has no `tc netem`
 * (field notes). FaultNet.delay() steers a host's connections into it with an nft redirect.
 */
export interface DelayProxy {
  readonly port: number;
  delayMs: number;
  /** Connections it has carried so far (proof that the redirect steered anything into it). */
  readonly connections: number;
  close(): Promise<void>;
}

function delayedPipe(from: net.Socket, to: net.Socket, proxy: { delayMs: number }): void {
  // One ordered queue per direction: timers of different lengths do not fire in creation order,
  // and an end or destroy must never overtake the data ahead of it.
  const queue: Array<{ at: number; run: () => void }> = [];
  let timer: NodeJS.Timeout | null = null;
  const pump = (): void => {
    timer = null;
    while (queue.length > 0 && queue[0]!.at <= Date.now()) queue.shift()!.run();
    if (queue.length > 0) timer = setTimeout(pump, queue[0]!.at - Date.now());
  };
  const push = (run: () => void): void => {
    const at = Math.max(Date.now() + proxy.delayMs, queue.at(-1)?.at ?? 0);
    queue.push({ at, run });
    if (timer === null) timer = setTimeout(pump, at - Date.now());
  };
  from.on('data', (chunk: Buffer) => push(() => to.write(chunk)));
  from.on('end', () => push(() => to.end()));
  from.on('error', () => push(() => to.destroy()));
}

export async function startDelayProxy(target: number, delayMs: number): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>();
  const state = { delayMs };
  let connections = 0;
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    delayedPipe(client, upstream, state);
    delayedPipe(upstream, client, state);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
