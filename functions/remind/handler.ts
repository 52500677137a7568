// remind: the early-warning reminders for the HIS on the data port (docs/his-guide.md "传染病提醒",
// docs/warning.md "Reminders"), authenticated like the receive paths (API key, certificate or
// address rule, bound to org codes):
//   GET  /reminders?orgCode=&dept=&doctor=&since=   open cases to act on, overdue and class A first,
//                                                   each with its evidence and a pre-filled card;
//                                                   `more` + `next`: ask again with cursor=<next>
//   GET  /reminders/stream?…                        the same as server-sent events (event: reminder),
//                                                   new and changed cases as they appear; event:
//                                                   position moves Last-Event-ID past what was sent;
//                                                   event: removed for a reminder that ended (a
//                                                   `since` poll's answer lists them in `removed`)
//   GET  /reminders/cards?orgCode=&dept=&doctor=&since=   the reported cases' cards and their status
//                                                   at the platform (sent, accepted, returned for
//                                                   correction, corrected), the clock until accepted
//   POST /reminders/<caseId>/ack     {doctor?, note?}  the HIS showed it to the doctor
//   POST /reminders/<caseId>/filled  {doctor?, note?}  the card was filled in the HIS's own form
//   POST /reminders/<caseId>/confirm {doctor, reason?} the doctor confirms the case
//   POST /reminders/<caseId>/exclude {doctor, reason}  the doctor excludes it, saying why
import { Hono, type Context } from 'hono';
import { type SSEStreamingApi, streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { defineFunction } from '../../shared/fn/index.js';
import { AppError, errorOutcome, handleError, notFoundAnswer, okAnswer, validationError } from '../../shared/http/errors.js';
import { callerNow, callerOf, hisAuth, visibleOrgs, assertOrg, type Caller } from '../../shared/http/auth.js';
import { remindConfig, type RemindSettings } from '../../shared/config/functions/remind.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import {
  listCaseCards,
  listReminders,
  markReminder,
  parseCursor,
  positionOf,
  sharedHorizon,
  sinceRange,
  type ReminderCursor,
  type ReminderQuery,
} from '../../shared/warning/reminders.js';
import { decideCase } from '../../shared/warning/store.js';
import { log } from '../../shared/log/index.js';

const app = new Hono();
app.onError(handleError);
// On the data port: a path no route takes is answered in the envelope, as the receive paths' are.
app.notFound(notFoundAnswer);

let parsed: RemindSettings | undefined;
const settings = (): RemindSettings => (parsed ??= remindConfig.parse());
// The caller check guards the routes only: an unknown path is 404 without settings (the self-test).
const auth = hisAuth({ config: () => settings().hisAuth });
app.use('/reminders', auth);
app.use('/reminders/*', auth);

// A NUL is refused here (400 naming the parameter), before a stream opens: the database cannot compare it.
const param = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .refine((s) => !s.includes('\u0000'), '不能含有 NUL 字符 (no NUL character)');
/**
 * A `since` (or a stream's Last-Event-ID holding an instant), docs/his-guide.md §9 and docs/warning.md
 * "Reminders", "Out-of-range values": before 2000 (0001-01-01T00:00:00Z, a .NET or Java "from the
 * beginning") is from the beginning, dropped here; more than a day ahead of the front's clock, 400.
 */
const Since = z.iso
  .datetime({ offset: true })
  .refine((s) => sinceRange(s, new Date()) !== 'future', '在将来 (in the future: pass the previous answer’s asOf)')
  .transform((s) => (sinceRange(s, new Date()) === 'beginning' ? undefined : s));
const Query = z.object({
  orgCode: param(50).optional(),
  dept: param(50).optional(),
  doctor: param(80).optional(),
  since: Since.optional(),
  cursor: z
    .string()
    .max(100)
    .refine((s) => parseCursor(s) !== null, '不是提醒应答给出的 next (not a next of a reminder answer)')
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

function query(c: Context, resume?: { since?: string; cursor?: ReminderCursor }): ReminderQuery {
  const q = Query.safeParse(c.req.query());
  if (!q.success) throw validationError(q.error, '提醒查询参数错误 (bad reminder query)');
  const caller = callerOf(c);
  if (q.data.orgCode) assertOrg(caller, q.data.orgCode);
  const from = resume?.since ?? q.data.since;
  const cursor = resume?.cursor ?? (q.data.cursor ? parseCursor(q.data.cursor)! : undefined);
  return {
    orgs: visibleOrgs(caller),
    ...(q.data.orgCode ? { orgCode: q.data.orgCode } : {}),
    ...(q.data.dept ? { dept: q.data.dept } : {}),
    ...(q.data.doctor ? { doctor: q.data.doctor } : {}),
    ...(from ? { since: from } : {}),
    ...(cursor ? { cursor } : {}),
    limit: q.data.limit,
  };
}

app.get('/reminders', async (c) => {
  const { start: _, ...r } = await listReminders(getPool(), query(c), new Date());
  return c.json(
    okAnswer(
      null,
      `待处理提醒 ${r.reminders.length} 条${r.removed.length ? `，已结束 ${r.removed.length} 条 (removed)` : ''}${r.more ? '，还有更多 (more: ask again with cursor=next)' : ''}`,
      r,
    ),
  );
});

app.get('/reminders/cards', async (c) => {
  const r = await listCaseCards(getPool(), query(c), new Date());
  return c.json(okAnswer(null, `已报告病例 ${r.cases.length} 条${r.more ? '，还有更多 (more: ask again with cursor=next)' : ''}`, r));
});

/**
 * Where a reconnecting stream resumes (its Last-Event-ID): a cursor (a reminder's id) or an instant (a
 * `position` event's, or an older stream's); anything else, or out of range, is 400 naming the header.
 */
function lastEventId(last: string): { cursor: ReminderCursor } | { since?: string } {
  const cursor = parseCursor(last);
  if (cursor) return { cursor };
  const since = Since.safeParse(last);
  if (!since.success)
    throw new AppError('BAD_REQUEST', 'Last-Event-ID 不是提醒流给出的事件 id，或超出范围 (Last-Event-ID is not an event id of a reminder stream)', [
      { field: 'Last-Event-ID', rule: 'format', message: '不是提醒流给出的事件 id (not an event id of this stream)' },
    ]);
  return since.data === undefined ? {} : { since: since.data };
}

/** How long one stream lasts; the browser's EventSource (or the HIS's client) reconnects with Last-Event-ID. */
const STREAM_MS = 50_000;
const POLL_MS = 250;
/** A quiet stream says where it stands this often (a `position` event), so a reconnect re-reads little. */
const POSITION_MS = 10_000;
/** Every stream of this replica sweeps from one horizon read per poll interval, not one each. */
const streamHorizon = sharedHorizon(POLL_MS);

/**
 * Streams open in this replica, per caller and in all (settings().streams): a stream past either
 * limit is refused with 429 before it opens, naming the limit; polls and the other calls keep the
 * function's remaining slots (docs/his-guide.md 传染病提醒).
 */
const openStreams = new Map<string, number>();
let streamsOpen = 0;

function admitStream(c: Context): () => void {
  const caller = callerOf(c);
  const who = `${caller.kind}:${caller.id}`;
  const { perCaller, max } = settings().streams;
  const mine = openStreams.get(who) ?? 0;
  if (mine >= perCaller)
    throw new AppError(
      'RATE_LIMITED',
      `提醒流已达上限：每个调用方最多同时打开 ${perCaller} 条，请合并为一条流（按科室、医生在 HIS 内分发）或改用轮询 (too many open reminder streams for this caller: ${perCaller})`,
    );
  if (streamsOpen >= max)
    throw new AppError('RATE_LIMITED', `提醒流已达上限：本服务最多同时 ${max} 条，请稍后重试或改用轮询 (too many open reminder streams: ${max})`);
  openStreams.set(who, mine + 1);
  streamsOpen++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    streamsOpen--;
    const n = (openStreams.get(who) ?? 1) - 1;
    if (n > 0) openStreams.set(who, n);
    else openStreams.delete(who);
  };
}

app.get('/reminders/stream', (c) => {
  // An event's id is where the stream stands (docs/warning.md "Reminders"): a reminder's, where its
  // page began (a cursor); a `position` event's, the `asOf` of the sweep that ended (a `since`; a
  // plain instant from older streams looks back). A reconnect resumes there, so nothing after the last
  // event seen is skipped, and after a `position` nothing already sent comes again but a case written
  // by a transaction open around that sweep's start (repeats are dropped by caseId + updatedAt).
  // A Last-Event-ID that is neither (or out of range) is refused before the stream opens, naming it
  // (docs/warning.md "Out-of-range values"); an instant before 2000 is from the beginning.
  const last = c.req.header('last-event-id')?.trim() || undefined;
  const resume = last === undefined ? undefined : lastEventId(last);
  const first = query(c, resume);
  const opened = callerOf(c);
  const release = admitStream(c);
  return streamSSE(c, async (stream) => {
    try {
      await sweep(stream);
    } catch (err) {
      await endInError(c, stream, err as Error);
    } finally {
      release();
    }
  });

  async function sweep(stream: SSEStreamingApi): Promise<void> {
    let closed = false;
    stream.onAbort(() => {
      closed = true;
    });
    const end = Date.now() + STREAM_MS;
    let at: Pick<ReminderQuery, 'since' | 'cursor'> = { ...(first.since ? { since: first.since } : {}), ...(first.cursor ? { cursor: first.cursor } : {}) };
    // What this stream sent: a reminder comes again only when its case changed (the query overlaps);
    // an ending (`removed`) likewise.
    const sent = new Map<string, string>();
    const gone = new Map<string, string>();
    // Where the stream stands (a position the front handed out): a sweep's asOf never goes back
    // behind it (docs/warning.md "Reminders"), so a horizon read low does not make a reconnect re-send.
    const handed = positionOf(first.since);
    let floor = handed !== null && handed <= Date.now() * 1000 ? handed : null;
    // The id the client holds, whether reminders were sent since, and when it was last moved.
    let lastId = last ?? null;
    let unmarked = false;
    let markedAt = Date.now();
    await stream.writeSSE({ event: 'open', data: JSON.stringify({ retryMs: 1000 }), retry: 1000 });
    while (!closed && Date.now() < end) {
      await stillAllowed(c, opened);
      const { since: _s, cursor: _c, ...base } = first;
      const r = await listReminders(getPool(), { ...base, ...at }, new Date(), {
        skip: (id, updatedAt) => sent.get(id) === updatedAt,
        horizon: streamHorizon,
        floor,
      });
      for (const rem of r.removed) {
        if (gone.get(rem.caseId) === rem.updatedAt) continue;
        gone.set(rem.caseId, rem.updatedAt);
        sent.delete(rem.caseId);
        await stream.writeSSE({ event: 'removed', id: r.start, data: JSON.stringify(rem) });
        lastId = r.start;
        unmarked = true;
      }
      for (const rem of r.reminders) {
        gone.delete(rem.caseId);
        sent.set(rem.caseId, rem.updatedAt);
        await stream.writeSSE({ event: 'reminder', id: r.start, data: JSON.stringify(rem) });
        lastId = r.start;
        unmarked = true;
      }
      // Every page of the sweep before waiting (docs/warning.md "Reminders"): a burst larger than a
      // page is delivered at once, not a page per wait.
      if (r.more && r.next && r.next !== r.start) {
        at = { cursor: parseCursor(r.next)! };
        continue;
      }
      // The sweep is complete: its asOf becomes the client's Last-Event-ID once reminders were sent
      // (a reconnect then resumes after them, not at their page), and now and then in a quiet spell.
      if (r.asOf !== lastId && (unmarked || Date.now() - markedAt >= POSITION_MS)) {
        await stream.writeSSE({ event: 'position', id: r.asOf, data: JSON.stringify({ asOf: r.asOf }) });
        lastId = r.asOf;
        unmarked = false;
        markedAt = Date.now();
      }
      at = { since: r.asOf };
      floor = positionOf(r.asOf);
      await stream.sleep(POLL_MS);
    }
  }
});

/**
 * The stream's caller is looked up again before every sweep (docs/his-auth.md "Caching and the
 * revocation delay"): a key revoked, expired or removed since the stream opened, or a caller whose orgs
 * changed, ends it with the 401 a poll would get — within HIS_AUTH_REFRESH_S, not at the stream's end.
 */
async function stillAllowed(c: Context, opened: Caller): Promise<void> {
  const now = await callerNow(c);
  const changed = now.ok && JSON.stringify(now.caller.orgs) !== JSON.stringify(opened.orgs);
  if (!now.ok || changed) log('info', 'reminder stream ended: its caller changed', { callerId: opened.id, why: now.ok ? 'orgs' : 'refused' });
  if (!now.ok) throw new AppError('UNAUTHENTICATED', now.reason);
  if (changed)
    throw new AppError('UNAUTHENTICATED', "调用方可访问的机构已变更，请重新连接 (the caller's org codes changed since the stream opened: reconnect)");
}

/**
 * A sweep that fails once the stream is open (the database away, a statement cancelled) ends the stream
 * as a request would have been answered (docs/warning.md "Reminders"): logged as handleError logs it (a
 * database fault as a warning naming its kind, never a stack) and sent as an `error` event holding the
 * same JSON, with `retry` set to its Retry-After, so the client reconnects from its Last-Event-ID then.
 */
async function endInError(c: Context, stream: SSEStreamingApi, err: Error): Promise<void> {
  const o = errorOutcome(err, c);
  try {
    await stream.writeSSE({ event: 'error', data: JSON.stringify(o.answer), ...(o.retryAfterS ? { retry: o.retryAfterS * 1000 } : {}) });
  } catch {
    // The client is gone: nothing to tell.
  }
}

const Mark = z.object({ doctor: z.string().trim().min(1).max(80).optional(), note: z.string().trim().max(200).optional() }).strict();

const mark = (what: 'ack' | 'filled') => async (c: Context) => {
  const id = c.req.param('id')!;
  if (!/^\d{1,18}$/.test(id)) throw new AppError('BAD_REQUEST', `提醒编号应为数字：${id} (a reminder id is a number)`);
  const text = await c.req.text();
  let json: unknown;
  try {
    json = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw new AppError('BAD_REQUEST', '请求体不是合法的 JSON (body is not valid JSON)');
  }
  const body = Mark.safeParse(json);
  if (!body.success) throw validationError(body.error, '请求体格式错误 (bad body)');
  const caller = callerOf(c);
  const r = await markReminder(
    getPool(),
    id,
    what,
    { caller: `${caller.kind}:${caller.id}`, doctor: body.data.doctor ?? null, note: body.data.note ?? null },
    visibleOrgs(caller),
    new Date(),
  );
  return c.json(okAnswer(id, what === 'ack' ? '已确认查看 (acknowledged)' : '已记录：报告卡已在 HIS 中填写 (card filled)', r));
};
app.post('/reminders/:id/ack', mark('ack'));
app.post('/reminders/:id/filled', mark('filled'));

// The doctor's decision, taken in the HIS: confirm (the reminder stays until the card arrives), or
// exclude with a reason. Both go to the case's history with the caller and the doctor.
const Decide = z.object({ doctor: z.string().trim().min(1).max(80), reason: z.string().trim().min(1).max(200).optional() }).strict();
const decide = (what: 'confirm' | 'exclude') => async (c: Context) => {
  const id = c.req.param('id')!;
  if (!/^\d{1,18}$/.test(id)) throw new AppError('BAD_REQUEST', `提醒编号应为数字：${id} (a reminder id is a number)`);
  const text = await c.req.text();
  let json: unknown;
  try {
    json = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw new AppError('BAD_REQUEST', '请求体不是合法的 JSON (body is not valid JSON)');
  }
  const body = Decide.safeParse(json);
  if (!body.success) throw validationError(body.error, '请求体格式错误 (bad body)');
  const caller = callerOf(c);
  const r = await decideCase(
    getPool(),
    id,
    what,
    { actor: `${caller.kind}:${caller.id}/${body.data.doctor}`, reason: body.data.reason ?? null },
    visibleOrgs(caller),
    { caseWindowDays: settings().warning.caseWindowDays },
  );
  return c.json(okAnswer(id, what === 'confirm' ? '已确认，请填写报告卡 (confirmed)' : '已排除 (excluded)', r));
};
app.post('/reminders/:id/confirm', decide('confirm'));
app.post('/reminders/:id/exclude', decide('exclude'));

// Another method on one of these paths: 405 with the methods it takes, as on the receive paths
// (docs/his-guide.md 应答); a path no route takes stays 404.
const only = (methods: string) => (c: Context) => {
  c.header('Allow', methods);
  throw new AppError('METHOD_NOT_ALLOWED', `不支持的请求方法 ${c.req.method}（此地址可用：${methods}）(method not allowed)`);
};
for (const path of ['/reminders', '/reminders/cards', '/reminders/stream']) app.all(path, only('GET, HEAD'));
for (const action of ['ack', 'filled', 'confirm', 'exclude']) app.all(`/reminders/:id/${action}`, only('POST'));

export default defineFunction({
  app,
  config: remindConfig,
  async init() {
    openPool(settings().database.url, 4, settings().database.limits);
  },
  close: closePool,
});
