/**
 * Database faults, classified (docs/faults.md, "Database faults"): which errors of PostgreSQL or
 * openGauss (or of the connection to them) mean "not now, retry later" rather than a defect. Each
 * class is answered 503 with Retry-After; anything else stays a 500. No pg import: the classes are
 * read from SQLSTATE codes and socket error codes only.
 */
export type DbFault =
  | 'unavailable' // connection refused, reset or lost; the server shutting down or starting (08xxx, 57P01-57P03)
  | 'disk_full' // 53100
  | 'out_of_memory' // 53200
  | 'too_many_connections' // 53300
  | 'insufficient_resources' // other 53xxx
  | 'timeout' // statement or lock timeout (57014; 55P03 PostgreSQL, YY003 openGauss)
  | 'conflict'; // serialization failure or deadlock, after withTx's retries (40001, 40P01)

/** Seconds a client is asked to wait before retrying, per class. */
export const RETRY_AFTER_S: Record<DbFault, number> = {
  unavailable: 5,
  disk_full: 60,
  out_of_memory: 10,
  too_many_connections: 2,
  insufficient_resources: 10,
  timeout: 5,
  conflict: 1,
};

/** A lock wait given up: PostgreSQL's lock_timeout (55P03), openGauss's lockwait_timeout (YY003). */
export const LOCK_TIMEOUT_CODES: ReadonlySet<string> = new Set(['55P03', 'YY003']);

const SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const LOST =
  /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|not queryable|Client was closed|Cannot use a pool after calling end/i;

/** The fault class of an error, or null when it is no database fault (a defect: 500). */
export function dbFault(err: unknown): DbFault | null {
  if (!err || typeof err !== 'object') return null;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (code === '53100') return 'disk_full';
  if (code === '53200') return 'out_of_memory';
  if (code === '53300') return 'too_many_connections';
  if (/^53/.test(code)) return 'insufficient_resources';
  if (code === '57014' || LOCK_TIMEOUT_CODES.has(code)) return 'timeout';
  if (code === '40001' || code === '40P01') return 'conflict';
  if (/^08/.test(code) || /^57P0[1-3]$/.test(code) || SOCKET.has(code)) return 'unavailable';
  const message = typeof e.message === 'string' ? e.message : '';
  if (/too.many.(connections|clients)/i.test(message)) return 'too_many_connections';
  if (LOST.test(message)) return 'unavailable';
  return null;
}
