/**
 * Ports for tests that kill a front and start it again on the same ports: n free ports below the
 * kernel's ephemeral range (32768+). A port from that range (what freePort() hands out) could
 * meanwhile become the local end of some outgoing connection, and the restart would find it taken.
 */
import { createServer } from 'node:net';

export async function stablePorts(n: number): Promise<number[]> {
  const free = (port: number) =>
    new Promise<boolean>((ok) => {
      const srv = createServer();
      srv.once('error', () => ok(false));
      srv.listen(port, '0.0.0.0', () => srv.close(() => ok(true)));
    });
  const out: number[] = [];
  while (out.length < n) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (!out.includes(port) && (await free(port))) out.push(port);
  }
  return out;
}

/**
 * Runs `start` (which picks its ports with freePort) again when a port it picked was taken by
 * another process before it could bind it: "already in use" is a race of the shared test machine, not
 * the code under test. Any other failure is thrown at once.
 */
export async function withPortRetry<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (err) {
      if (i >= attempts || !/already in use/.test((err as Error).message)) throw err;
    }
  }
}
