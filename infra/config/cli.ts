/**
 * cdc-config: configuration bundles from the platform's side, for development, tests and acceptance
 * (docs/config-bundles.md). The national platform signs with its own key and tools; this command does
 * what it does, with a key file.
 *
 *   cdc-config keygen --out <dir>                         an SM2 pair: config-platform-key.pem, config-platform-pubkey
 *   cdc-config sign --file bundle.json [--key <pem>] [--out signed.json]
 *   cdc-config push --file bundle.json [--key <pem>] [--url <config port>] [--token-file <file>]
 *   cdc-config history | current | version-check | schedules [--url …] [--token-file …]
 *   cdc-config rollback --version <n> [--reason <text>] [--url …] [--token-file …]
 *
 * Defaults come from where `make up` put things (infra/cli/locate.ts): the key is the development
 * platform key (<data dir>/simulators/config-platform-key.pem), the URL http://127.0.0.1:$CONFIG_PORT,
 * the token the secret file config-token. The bundle file is signed byte for byte as it is.
 * Exit codes: 0 done, 1 refused or failed (the front's reason printed), 2 bad arguments.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parseCommandLine, runCommand, runIfMain } from '../cli/command.js';
import { locate } from '../cli/locate.js';
import { signBundle } from '../../shared/configbundle/sign.js';
import { CODE_FORMAT } from '../../shared/activation/index.js';
import { generateSm2KeyPair, parseSm2PrivateKey } from '../../shared/uplink/sm.js';
import { devSigningKeyFile, PLATFORM_PUBKEY_SECRET } from './dev-key.js';

const USAGE = `usage:
  cdc-config keygen --out <dir>
  cdc-config sign --file <bundle.json> [--key <private key pem>] [--out <signed.json>]
  cdc-config push --file <bundle.json> [--key <pem>] [--url <http://host:8882>] [--token-file <file>]
  cdc-config history | current | version-check | schedules [--url …] [--token-file …]
  cdc-config rollback --version <n> [--reason <text>] [--url …] [--token-file …]
  cdc-config activate --file <authorization code file> [--url …] [--token-file …]   (docs/activation.md)
  cdc-config activation [--url …] [--token-file …]
  cdc-config sign-code --file <code.json> [--key <pem>] [--out <file>]   (a development authorization code)`;

const remote = { url: z.url().optional(), 'token-file': z.string().optional() };
const CommandSchema = z.discriminatedUnion('command', [
  z.object({ command: z.literal('keygen'), out: z.string().min(1) }),
  z.object({ command: z.literal('sign'), file: z.string().min(1), key: z.string().optional(), out: z.string().optional() }),
  z.object({ command: z.literal('push'), file: z.string().min(1), key: z.string().optional(), ...remote }),
  z.object({ command: z.literal('history'), ...remote }),
  z.object({ command: z.literal('current'), ...remote }),
  z.object({ command: z.literal('version-check'), ...remote }),
  z.object({ command: z.literal('schedules'), ...remote }),
  z.object({ command: z.literal('rollback'), version: z.coerce.number().int().positive(), reason: z.string().max(500).optional(), ...remote }),
  z.object({ command: z.literal('activate'), file: z.string().min(1), ...remote }),
  z.object({ command: z.literal('activation'), ...remote }),
  z.object({ command: z.literal('sign-code'), file: z.string().min(1), key: z.string().optional(), out: z.string().optional() }),
]);
type Command = z.output<typeof CommandSchema>;

export function parseCommand(argv: string[]): Command {
  return parseCommandLine(argv, {
    usage: USAGE,
    schema: CommandSchema,
    options: {
      out: { type: 'string' },
      file: { type: 'string' },
      key: { type: 'string' },
      url: { type: 'string' },
      'token-file': { type: 'string' },
      version: { type: 'string' },
      reason: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function signed(file: string, keyFile?: string, tag?: string): string {
  const key = parseSm2PrivateKey(readFileSync(keyFile ?? devSigningKeyFile(locate().dataDir), 'utf8'));
  return JSON.stringify(signBundle(readFileSync(file, 'utf8'), key, tag));
}

async function call(
  cmd: { url?: string | undefined; 'token-file'?: string | undefined },
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; json: unknown }> {
  const loc = locate();
  const base = cmd.url ?? `http://127.0.0.1:${loc.ports.config}`;
  const token = readFileSync(cmd['token-file'] ?? join(loc.secretsDir, 'config-token'), 'utf8')
    .trim()
    .split(/\r?\n/)[0]!;
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body } : {}),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

export async function run(cmd: Command, out: (s: string) => void): Promise<number> {
  switch (cmd.command) {
    case 'keygen': {
      const pair = generateSm2KeyPair();
      mkdirSync(cmd.out, { recursive: true, mode: 0o700 });
      writeFileSync(join(cmd.out, 'config-platform-key.pem'), pair.privateKeyPem, { mode: 0o600 });
      writeFileSync(join(cmd.out, PLATFORM_PUBKEY_SECRET), pair.publicKeyPem, { mode: 0o644 });
      out(`wrote ${join(cmd.out, 'config-platform-key.pem')} (keep it at the platform) and ${join(cmd.out, PLATFORM_PUBKEY_SECRET)} (the front's secret file)`);
      return 0;
    }
    case 'sign':
    case 'sign-code': {
      const text = signed(cmd.file, cmd.key, cmd.command === 'sign-code' ? CODE_FORMAT : undefined);
      if (cmd.out) writeFileSync(cmd.out, text + '\n');
      else out(text);
      return 0;
    }
    default: {
      const r =
        cmd.command === 'push'
          ? await call(cmd, 'POST', '/bundles', signed(cmd.file, cmd.key))
          : cmd.command === 'activate'
            ? await call(cmd, 'POST', '/activation', readFileSync(cmd.file, 'utf8'))
            : cmd.command === 'rollback'
              ? await call(cmd, 'POST', `/bundles/${cmd.version}/rollback`, JSON.stringify(cmd.reason ? { reason: cmd.reason } : {}))
              : await call(
                  cmd,
                  'GET',
                  { history: '/bundles', current: '/bundles/current', 'version-check': '/version-check', schedules: '/schedules', activation: '/activation' }[
                    cmd.command
                  ],
                );
      out(JSON.stringify(r.json, null, 2));
      return r.status < 300 ? 0 : 1;
    }
  }
}

export const main = (argv: string[]): Promise<number> => runCommand(argv, USAGE, parseCommand, run);
runIfMain(import.meta.url, main);
