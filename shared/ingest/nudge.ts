/**
 * After a commit, a receive function nudges the push function (an async invocation through the
 * gateway), so realtime data leaves in seconds; the per-minute cron is the safety net. Debounced:
 * at most one nudge in flight and one per interval per process. Failures are ignored on purpose —
 * the outbox row is durable and the cron will pick it up.
 */
export function nudger(url: string | undefined, intervalMs = 250): () => void {
  if (!url) return () => undefined;
  let timer: NodeJS.Timeout | undefined;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      fetch(url, { method: 'POST', headers: { 'x-nudge': 'ingest' }, body: '', signal: AbortSignal.timeout(2000) })
        .catch(() => undefined)
        .finally(() => {
          timer = undefined;
        });
    }, intervalMs);
    timer.unref?.();
  };
}
