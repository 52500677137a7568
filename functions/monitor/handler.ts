// monitor: the monitoring port (8883), read by the national platform (requirements §2, §8).
// Served as the port's root function (stack.yml com.cdc-front.root), so it sees every path as sent.
//   GET / , GET /status   the front's status as JSON (shared/status); 503 with the same body when
//                         the database is unreachable, so a watcher needs only the status code
//   GET /healthz          200 {ok:true} when the database answers, 503 {ok:false} otherwise
import { Hono, type Context } from 'hono';
import { defineFunction } from '../../shared/fn/index.js';
import { AppError, errorAnswer, handleError } from '../../shared/http/errors.js';
import { monitorConfig } from '../../shared/config/functions.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import { databaseAnswers, frontStatus } from '../../shared/status/index.js';

const app = new Hono();
app.onError(handleError);
app.notFound((c) => c.json(errorAnswer(new AppError('NOT_FOUND', `接口不存在：${c.req.path}`)), 404));

const status = async (c: Context) => {
  const s = await frontStatus(getPool());
  c.header('cache-control', 'no-store');
  return c.json(s, s.database.reachable ? 200 : 503);
};
app.get('/', status);
app.get('/status', status);

app.get('/healthz', async (c) => {
  c.header('cache-control', 'no-store');
  return (await databaseAnswers(getPool())) ? c.json({ ok: true }) : c.json({ ok: false }, 503);
});

export default defineFunction({
  app,
  config: monitorConfig,
  async init() {
    const { database } = monitorConfig.parse();
    openPool(database.url, 2, database.limits);
  },
  close: closePool,
});
