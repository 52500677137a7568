/**
 * A minimal Node.js reverse proxy, for P3's reference line (bench/headline.ts): a `node:http` server
 * that forwards each request to one upstream port with `http.request` over a keep-alive agent and
 * pipes the answer back — no routing, limits, timeouts, headers of its own or metrics. What a Node
 * HTTP hop costs by itself, beside what the runtime's hop costs (docs/bench.md "Headline", P3).
 *
 *   node bench/minimal-proxy.ts <listen port> <upstream port>
 */
import { Agent, createServer, request } from 'node:http';

const [listen, upstream] = process.argv.slice(2).map(Number);
if (!listen || !upstream) throw new Error('usage: minimal-proxy.ts <listen port> <upstream port>');
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
createServer((req, res) => {
  const up = request({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
}).listen(listen, '127.0.0.1', () => process.send?.('ready'));
