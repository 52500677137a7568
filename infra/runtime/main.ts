/**
 * `node --max-semi-space-size=4 --import tsx infra/runtime/main.ts --stack stack.yml` (npm run up;
 * the flags: node-flags.ts): starts the runtime from the environment and stops it cleanly on
 * SIGTERM/SIGINT. Configuration, parsed once and failing fast:
 *   GATEWAY_HOST (127.0.0.1), GATEWAY_PORT (8080), HOSPITAL_HOST (0.0.0.0),
 *   DATA_PORT/CONFIG_PORT/MONITOR_PORT/WEB_PORT (8881-8884), CDC_SECRETS_DIR (.data/secrets),
 *   CDC_LOGS_DIR (.data/logs), CRON_TZ (Asia/Shanghai), CRON_ENABLED (true), RUNTIME_BUILD (missing);
 *   TLS of the hospital ports: <P>_TLS_CERT, _KEY, _CLIENT_CA, _CLIENT_CERT, _MIN_VERSION (tls.ts);
 *   timeouts and caps: RUNTIME_HEADERS_TIMEOUT, RUNTIME_REQUEST_TIMEOUT, RUNTIME_MAX_CONNECTIONS,
 *   RUNTIME_MAX_CONNECTIONS_PER_PEER, RUNTIME_MAX_BUFFERED_BYTES, RUNTIME_AUTOSCALE_CEILING (limits.ts,
 *   read by startRuntime).
 * SIGHUP re-reads the TLS certificate files.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { startRuntime } from './index.js';

const envSchema = z.object({
  GATEWAY_HOST: z.string().default('127.0.0.1'),
  GATEWAY_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOSPITAL_HOST: z.string().default('0.0.0.0'),
  CDC_SECRETS_DIR: z.string().default('.data/secrets'),
  CDC_LOGS_DIR: z.string().default('.data/logs'),
  CRON_TZ: z.string().default('Asia/Shanghai'),
  CRON_ENABLED: z.enum(['true', 'false']).default('true'),
  RUNTIME_BUILD: z.enum(['missing', 'always', 'never']).default('missing'),
});

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { stack: { type: 'string', default: 'stack.yml' } } });
  const parsed = envSchema.safeParse(process.env);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const env = parsed.data;
  const rt = await startRuntime({
    stackFile: values.stack!,
    secretsDir: env.CDC_SECRETS_DIR,
    logsDir: env.CDC_LOGS_DIR,
    gateway: { host: env.GATEWAY_HOST, port: env.GATEWAY_PORT },
    hospital: { host: env.HOSPITAL_HOST },
    cron: env.CRON_ENABLED === 'true' ? { timezone: env.CRON_TZ } : false,
    build: env.RUNTIME_BUILD,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), level: 'info', source: 'runtime', msg: 'signal', signal }) + '\n');
    rt.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`cdc-front-runtime: close failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  // Certificate renewal: re-read the TLS files of the hospital ports (docs/runtime.md, "TLS").
  process.on('SIGHUP', () => {
    try {
      rt.reloadTls();
    } catch (err) {
      process.stderr.write(
        JSON.stringify({
          ts: new Date().toISOString(),
          level: 'error',
          source: 'runtime',
          msg: 'tls reload failed, previous certificates kept',
          err: (err as Error).message,
        }) + '\n',
      );
    }
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`cdc-front-runtime: ${(err as Error).message}\n`);
  process.exit(1);
});
