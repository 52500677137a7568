/**
 * What `make up` says about a backup store it does not start (docs/backup.md "Settings"): with
 * BACKUP_S3_ENDPOINT set it starts no store of its own, and an operator who exported the variable for
 * `make backup` / `make restore` would otherwise get no word of it until every backup failed.
 */
import { connect } from 'node:net';

/** Whether something accepts a TCP connection at the endpoint's host and port within `ms`. */
export function endpointAnswers(endpoint: string, ms = 2000): Promise<boolean> {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    return Promise.resolve(false);
  }
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  return new Promise((ok) => {
    const s = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port });
    const done = (v: boolean) => {
      s.destroy();
      ok(v);
    };
    s.setTimeout(ms, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** The lines make up prints for a store given by BACKUP_S3_ENDPOINT. */
export function foreignStoreNotes(endpoint: string, ownPort: number, answers: boolean): string[] {
  const lines = [
    `backup store: BACKUP_S3_ENDPOINT=${endpoint}, not started by make up (its own store, port ${ownPort}, starts only without BACKUP_S3_ENDPOINT)`,
  ];
  if (answers) return lines;
  let own = false;
  try {
    const u = new URL(endpoint);
    own = ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) && Number(u.port) === ownPort;
  } catch {
    own = false;
  }
  lines.push(
    own
      ? `nothing answers at ${endpoint}: that is make up's own store's address, which it does not start while BACKUP_S3_ENDPOINT is set — every backup fails; start make up without BACKUP_S3_ENDPOINT (make backup and make restore find its store without it) (docs/backup.md "Settings")`
      : `nothing answers at ${endpoint} yet: every backup fails until the store is reachable there (docs/backup.md "Settings")`,
  );
  return lines;
}
