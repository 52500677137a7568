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
