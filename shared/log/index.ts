/**
 * Structured JSON log lines on stdout (the runtime and of-watchdog both collect stdout).
 * Never pass personal data (names, ID numbers, phones, addresses) or request bodies here.
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const threshold = order[(process.env.LOG_LEVEL as Level) ?? 'info'] ?? 20;

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (order[level] < threshold) return;
  process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields }) + '\n');
}

/**
 * A request path as a log line may show it: the route's own words kept, every other segment (a
 * record id, a case number, a patient's id) replaced by `*` — `/emrPatientInfo/P0001` is logged as
 * `/emrPatientInfo/*`. `words` are the route words and resource names of the function.
 */
export function maskPath(path: string, words: ReadonlySet<string>): string {
  const q = path.indexOf('?');
  const bare = q >= 0 ? path.slice(0, q) : path;
  return bare
    .split('/')
    .map((seg) => (seg === '' || words.has(seg) || ROUTE_WORDS.has(seg) ? seg : '*'))
    .join('/');
}

/** The words of the project's routes (functions/*, shared/*): never data. */
const ROUTE_WORDS: ReadonlySet<string> = new Set([
  'hclient',
  'emr',
  'receive',
  '_reconcile',
  'function',
  'reminders',
  'stream',
  'cards',
  'ack',
  'filled',
  'confirm',
  'exclude',
  'cases',
  'verify',
  'assign',
  'signals',
  'snooze',
  'duplicates',
  'aberration',
  'selfcheck',
  'precision',
  'dead',
  'replay',
  'circuits',
  'lag',
  'run',
  'days',
  'api',
  'codes',
  'mappings',
  'sso',
  'popup',
  'card',
  'done',
  'check',
  'openapi.json',
  'openapi.html',
  'status.html',
  'codes.html',
  'popup.html',
  'card.html',
  'card.js',
  'healthz',
  'status',
  'metrics',
]);
