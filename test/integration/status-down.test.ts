// With the database unreachable, the monitoring port and the status page still answer: 503, saying
// so, never a crash or a 500. Its own file: one process holds one configuration (DATABASE_URL).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/runtime/replica.js';
import { monitorTokenDir } from '../setup/monitor-token.js';
import { ComponentsSchema } from '../../shared/monitor/components.js';

const port = await freePort(); // nothing listens there
process.env.DATABASE_URL = `postgresql://nobody:secret@127.0.0.1:${port}/cdcfront`;
const nationalPort = await freePort(); // the national platform's setting: nothing listens there either
process.env.NATIONAL_URL = `http://127.0.0.1:${nationalPort}/`;
const platform = monitorTokenDir();
const { default: monitor } = await import('../../functions/monitor/handler.js');
const { default: web } = await import('../../functions/web/handler.js');

beforeAll(async () => {
  await monitor.init?.();
  await web.init?.();
});
afterAll(async () => {
  await monitor.close?.();
  await web.close?.();
});

describe('database down', () => {
  it('the status page answers 503 and says 数据库：不可用', async () => {
    const res = await web.app.request('/status.html');
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const text = await res.text();
    expect(text).toContain('<h1>前置软件运行状态</h1>');
    expect(text).toContain('数据库：不可用');
    expect(text).not.toContain('数据库：正常');
    expect(text).toContain('<h2>软件版本</h2>');
    // Neither the connection string nor its password leaks into the page.
    expect(text).not.toMatch(/nobody|secret|postgresql:/);
  });

  it('GET /status answers 503 with the status saying the database is unreachable', async () => {
    const res = await monitor.app.request('/status', { headers: platform.headers });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      database: { reachable: false, dialect: null, serverTime: null },
      outbox: null,
      lastPushRun: null,
      activation: null,
      version: expect.any(String),
    });
  });

  it('GET /components answers: the database down, the others unknown, the platforms at their settings still probed', async () => {
    const res = await monitor.app.request('/components', { headers: platform.headers });
    expect(res.status).toBe(200);
    const c = ComponentsSchema.parse(await res.json());
    expect(c.components.map((x) => [x.name, x.state])).toEqual([
      ['database', 'down'],
      ['object-store', 'unknown'],
      ['platforms', 'unknown'],
    ]);
    // The destinations are not known without the database: the settings stand in.
    expect(c.platforms).toEqual([
      {
        destination: 'national',
        host: `127.0.0.1:${nationalPort}`,
        url: `http://127.0.0.1:${nationalPort}/`,
        source: 'setting',
        connectMs: null,
        error: 'ECONNREFUSED',
      },
    ]);
    expect(JSON.stringify(c)).not.toMatch(/nobody|secret/);
  });

  it('GET /healthz answers 503 {ok:false}', async () => {
    const res = await monitor.app.request('/healthz');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ok: false });
  });
});
