// web: the PC web console on port 8884 (requirements §2), for public-health doctors and clinicians.
// Served as the port's root function (stack.yml com.cdc-front.root), so it sees every path as sent.
//   GET /status.html   the status page (the notice requires it to answer); 503 with the page, saying
//                      数据库：不可用, when the database is unreachable
//   GET /              redirects to /status.html
import { Hono } from 'hono';
import { defineFunction } from '../../shared/fn/index.js';
import { AppError, errorAnswer, handleError } from '../../shared/http/errors.js';
import { loadConfig } from '../../shared/config/index.js';
import { closePool, getPool, openPool } from '../../shared/db/index.js';
import { frontStatus } from '../../shared/status/index.js';
import { renderStatusPage } from './page.js';

const app = new Hono();
app.onError(handleError);
app.notFound((c) => c.json(errorAnswer(new AppError('NOT_FOUND', `页面不存在：${c.req.path}`)), 404));

// The pages carry no script and load nothing from elsewhere; the policy makes that a guarantee.
app.use('*', async (c, next) => {
  await next();
  c.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  c.header('x-content-type-options', 'nosniff');
  c.header('referrer-policy', 'no-referrer');
});

app.get('/', (c) => c.redirect('/status.html', 302));

app.get('/status.html', async (c) => {
  const s = await frontStatus(getPool());
  c.header('cache-control', 'no-store');
  return c.html(renderStatusPage(s, loadConfig().timeZone), s.database.reachable ? 200 : 503);
});

export default defineFunction({
  app,
  async init() {
    openPool(loadConfig().databaseUrl, 2);
  },
  close: closePool,
});
