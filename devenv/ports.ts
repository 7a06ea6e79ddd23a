import { createServer } from 'node:net';

/**
 * Free TCP ports on 127.0.0.1 for test servers.
 *
 * The OS picks an ephemeral port (listen on port 0); we close the socket and hand the number out.
 * Ports already handed out by this process are never returned twice, so a test that asks for
 * several ports before starting anything gets distinct ones. Another process could still grab a
 * port between close and use: callers that start servers should retry on EADDRINUSE.
 */
const handedOut = new Set<number>();

function probe(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('could not read the probed port'))));
    });
  });
}

export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await probe();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: no free port found after 50 attempts');
}

export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  return ports;
}
