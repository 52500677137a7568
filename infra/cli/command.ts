/**
 * What the operator commands (bin/cdc-callers, bin/cdc-codes) share: `verb --option value`
 * arguments validated with a zod schema (a usage error names each bad option and exits 2), errors
 * printed without a stack (exit 1), and plain-text tables.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { AppError } from '../../shared/http/errors.js';

export class UsageError extends Error {}

export interface CommandSpec<S extends z.ZodType> {
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  schema: S;
  /** Positional arguments after the verb, by verb: their names in the parsed object (default none). */
  positionals?: Record<string, string[]>;
}

/** argv (without node and the script) → a validated command, or UsageError naming what is wrong. */
export function parseCommandLine<S extends z.ZodType>(argv: string[], spec: CommandSpec<S>): z.output<S> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: spec.options });
  const [command, ...rest] = positionals;
  if (values.help || !command) throw new UsageError(spec.usage);
  const names = spec.positionals?.[command] ?? [];
  if (rest.length > names.length) throw new UsageError(`unexpected argument: ${rest.slice(names.length).join(' ')}\n${spec.usage}`);
  const named = Object.fromEntries(names.flatMap((n, i) => (rest[i] === undefined ? [] : [[n, rest[i]]])));
  const parsed = spec.schema.safeParse({ command, ...values, ...named });
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => (i.path.length ? `--${i.path.join('.')}: ${i.message}` : i.message)).join('\n');
    throw new UsageError(`${what}\n${spec.usage}`);
  }
  return parsed.data;
}

/** Parses, runs, and maps failures to exit codes: 2 usage, 1 error (AppError issues listed). */
export async function runCommand<C>(
  argv: string[],
  usage: string,
  parse: (argv: string[]) => C,
  run: (cmd: C, out: (s: string) => void) => Promise<number>,
): Promise<number> {
  let cmd: C;
  try {
    cmd = parse(argv);
  } catch (err) {
    process.stderr.write((err instanceof UsageError ? err.message : `${(err as Error).message}\n${usage}`) + '\n');
    return 2;
  }
  try {
    return await run(cmd, (s) => process.stdout.write(s + '\n'));
  } catch (err) {
    if (err instanceof AppError) {
      process.stderr.write(`error: ${err.desc}\n`);
      for (const i of err.issues) process.stderr.write(`  ${i.field}: ${i.message}\n`);
    } else process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

/** Columns padded to their widest cell (CJK-safe by code points). */
export function textTable(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell + ' '.repeat(widths[i]! - [...cell].length))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Runs `main` when the module is the process's entry (node --import tsx <file>), setting the exit code. */
export function runIfMain(moduleUrl: string, main: (argv: string[]) => Promise<number>): void {
  if (process.argv[1] && fileURLToPath(moduleUrl) === process.argv[1]) {
    void main(process.argv.slice(2)).then((code) => {
      process.exitCode = code;
    });
  }
}
