/**
 * bin/cdc-faas: the runtime's operator CLI (infra/runtime/cli.ts) with the gateway and its
 * credentials found the way `make up` set them (infra/cli/locate.ts): --gateway, else OPENFAAS_URL,
 * else http://GATEWAY_HOST:GATEWAY_PORT; --secrets, else CDC_SECRETS_DIR, else <CDC_DATA_DIR>/secrets.
 * When the gateway cannot be reached or refuses the credentials, the error says what was tried.
 */
import { parseArgs } from 'node:util';
import { run, UsageError } from '../runtime/cli.js';
import { findGateway, type FoundGateway } from './locate.js';
import { runIfMain } from './command.js';

/** Explains a failure with what was tried; undefined when the error is not about finding the gateway. */
function explain(err: Error, gw: FoundGateway): string | undefined {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (err.name === 'TypeError' && /fetch failed/.test(err.message)) {
    return `cannot reach the gateway (${cause?.message ?? cause?.code ?? err.message}); tried ${gw.tried[0]}; is \`make up\` running?`;
  }
  if (/unauthorized/.test(err.message)) {
    return `${err.message}; tried ${gw.tried.slice(1).join(', ')}`;
  }
  return undefined;
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: false, allowPositionals: true, options: { gateway: { type: 'string' }, secrets: { type: 'string' } } });
  let gw: FoundGateway;
  try {
    gw = findGateway(process.env, {
      url: typeof values.gateway === 'string' ? values.gateway : undefined,
      secretsDir: typeof values.secrets === 'string' ? values.secrets : undefined,
    });
  } catch (err) {
    process.stderr.write(`cdc-faas: ${(err as Error).message}\n`);
    return 2;
  }
  try {
    return await run([...argv, '--gateway', gw.url, '--secrets', gw.secretsDir], out);
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`cdc-faas: ${explain(e, gw) ?? e.message}\n`);
    if (!(err instanceof UsageError)) return 1;
    await run(['--help'], (s) => process.stderr.write(s));
    return 2;
  }
}

runIfMain(import.meta.url, (argv) => main(argv));
