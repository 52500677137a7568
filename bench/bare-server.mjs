// P7's baseline (bench/headline.ts startToReady): the least a Node process can do before its port
// accepts — a bare HTTP server on the port the runtime gives a replica, nothing loaded.
import { createServer } from 'node:http';

createServer((_req, res) => res.end('{}')).listen(Number(process.env.http_port), process.env.http_host ?? '127.0.0.1');
