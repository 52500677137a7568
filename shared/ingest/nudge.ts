/**
 * After a commit, a receive function nudges the push function (an async invocation through the
 * gateway), so realtime data leaves in seconds; the per-minute cron is the safety net. The first
 * commit after a quiet spell nudges at once; commits while a nudge is in flight or within the
 * interval after it are folded into one more nudge at the interval's end — at most one in flight and
 * one per interval per process, and no commit left without a nudge after it. Failures are ignored on
 * purpose — the outbox row is durable and the cron will pick it up.
 *
 * A nudge is a bare `node:http(s)` POST over a kept-alive socket, not `fetch`: a receive replica
 * sends a few a second under load, and fetch's request and stream objects cost it CPU that
 * the records need (docs/bench.md, "Where the replica's time goes").
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export function nudger(url: string | undefined, intervalMs = 250): () => void {
  if (!url) return () => undefined;
  const target = new URL(url);
  const tls = target.protocol === 'https:';
  const agent = tls ? new HttpsAgent({ keepAlive: true, maxSockets: 1 }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
  const send = (done: () => void) => {
    const req = (tls ? httpsRequest : httpRequest)(
      target,
      { method: 'POST', agent, headers: { 'x-nudge': 'ingest', 'content-length': '0' }, timeout: 2000 },
      (res) => {
        res.resume();
        res.on('end', done);
        res.on('error', done);
      },
    );
    req.on('timeout', () => req.destroy(new Error('nudge timed out')));
    req.on('error', done);
    // Whatever ends the exchange, the next nudge may go.
    req.on('close', done);
    req.end();
  };
  // cooling: a nudge is in flight or its interval has not passed; pending: a commit came meanwhile.
  let cooling = false;
  let pending = false;
  const fire = () => {
    cooling = true;
    pending = false;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      const timer = setTimeout(() => {
        cooling = false;
        if (pending) fire();
      }, intervalMs);
      timer.unref?.();
    };
    // A request that cannot even be made (a bad URL at run time) must not stop every later nudge.
    try {
      send(done);
    } catch {
      done();
    }
  };
  return () => {
    if (cooling) pending = true;
    else fire();
  };
}
