/**
 * cdc-codes: the operator command for code mapping (值域代码映射; docs/code-mapping.md).
 *
 *   cdc-codes import-national --domain drug --file drugs.csv --version 2026-01 [--source "省平台下发"] [--partial]
 *   cdc-codes import-mappings --org 123456789 --file mappings.csv [--by 张三]
 *   cdc-codes export-mappings --org 123456789 [--domain sex] [--unmapped] --out mappings.csv
 *   cdc-codes completeness --org 123456789 [--json]
 *   cdc-codes domains [--json]
 *
 * import-national is for the lists that are not public (drugs, region and org codes, the full ICD-10
 * infectious-disease list): a CSV with a code and a name column (code,name / 代码,名称 / code,name_zh
 * as in schemas/codes), UTF-8 or GBK. Files are read and written as Excel does (shared/codes/csv.ts).
 * The database is DATABASE_URL, else the secret file cdc-database-url that `make up` wrote
 * (infra/cli/locate.ts).
 * Exit codes: 0 done, 1 failed (database, invalid file: the errors are listed), 2 bad arguments.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseCommandLine, runCommand, runIfMain, UsageError } from '../cli/command.js';
import { z } from 'zod';
import { connectDatabase } from '../cli/locate.js';
import { closePool } from '../../shared/db/index.js';
import { OrgCodeSchema } from '../../shared/http/auth.js';
import { AppError } from '../../shared/http/errors.js';
import { decodeText, parseCsv, records, writeCsv } from '../../shared/codes/csv.js';
import { DomainSchema } from '../../shared/codes/model.js';
import {
  EXPORT_COLUMNS,
  GAP_ZH,
  MAPPING_COLUMNS,
  completeness,
  exportHeader,
  exportRows,
  importMappings,
  importNational,
  listDomains,
  removedInUseWarning,
} from '../../shared/codes/store.js';

const USAGE = `usage:
  cdc-codes import-national --domain <domain> --file <codes.csv> --version <version> [--source <text>] [--partial]
  cdc-codes import-mappings --org <org code> --file <mappings.csv> [--by <person>]
  cdc-codes export-mappings --org <org code> [--domain <domain>] [--unmapped] --out <file.csv>
  cdc-codes completeness --org <org code> [--json]
  cdc-codes domains [--json]
Domains are the keys of 'cdc-codes domains' (sex, drug, diagnosis, region, ...). CSV files: UTF-8 (BOM or not) or GBK.`;

const CommandSchema = z.discriminatedUnion('command', [
  z.object({
    command: z.literal('import-national'),
    domain: DomainSchema,
    file: z.string().min(1),
    version: z.string().trim().min(1).max(50),
    source: z.string().trim().max(300).optional(),
    partial: z.boolean().default(false),
  }),
  z.object({ command: z.literal('import-mappings'), org: OrgCodeSchema, file: z.string().min(1), by: z.string().trim().max(100).optional() }),
  z.object({
    command: z.literal('export-mappings'),
    org: OrgCodeSchema,
    domain: DomainSchema.optional(),
    unmapped: z.boolean().default(false),
    out: z.string().min(1),
  }),
  z.object({ command: z.literal('completeness'), org: OrgCodeSchema, json: z.boolean().default(false) }),
  z.object({ command: z.literal('domains'), json: z.boolean().default(false) }),
]);
export type Command = z.output<typeof CommandSchema>;

export { UsageError };

export function parseCommand(argv: string[]): Command {
  return parseCommandLine(argv, {
    usage: USAGE,
    schema: CommandSchema,
    options: {
      domain: { type: 'string' },
      file: { type: 'string' },
      version: { type: 'string' },
      source: { type: 'string' },
      partial: { type: 'boolean' },
      org: { type: 'string' },
      by: { type: 'string' },
      out: { type: 'string' },
      unmapped: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** A national list file: code and name columns (code,name / 代码,名称 / code,name_zh), name_en optional. */
export function nationalRows(bytes: Uint8Array): Array<{ code: string; name: string; nameEn: string | null }> {
  const t = records(parseCsv(decodeText(bytes).text), { code: ['代码', '编码', '值'], name: ['name_zh', '名称', '值含义', '中文名称'], name_en: ['英文名称'] });
  if (t.missing.includes('code') || t.missing.includes('name')) {
    throw new AppError('BAD_REQUEST', `文件应有“代码(code)”和“名称(name)”两列 (need code and name columns)`);
  }
  return t.records.map((r) => ({ code: r.values.code ?? '', name: r.values.name ?? '', nameEn: r.values.name_en ?? null }));
}

const actor = (by?: string) => ({ by: by || process.env.USER || 'cdc-codes', via: 'cli:cdc-codes' });

export async function run(cmd: Command, out: (s: string) => void): Promise<number> {
  const db = await connectDatabase(2);
  try {
    switch (cmd.command) {
      case 'import-national': {
        const codes = nationalRows(readFileSync(cmd.file));
        const r = await importNational(db, {
          domain: cmd.domain,
          version: cmd.version,
          source: cmd.source ?? basename(cmd.file),
          codes,
          status: cmd.partial ? 'partial' : 'loaded',
        });
        out(
          `loaded ${r.codes} codes into ${r.domain} as version ${r.version} (${r.closed} codes of earlier versions closed); running caches reload within their refresh interval`,
        );
        const warning = removedInUseWarning(r.removedInUse, `warning: ${r.domain}`);
        if (warning) out(warning);
        return 0;
      }
      case 'import-mappings': {
        const t = records(parseCsv(decodeText(readFileSync(cmd.file)).text), MAPPING_COLUMNS);
        const need = (['domain', 'local_code', 'national_code'] as const).filter((k) => t.missing.includes(k));
        if (need.length) throw new AppError('BAD_REQUEST', `missing columns: ${need.join(', ')}`);
        const r = await importMappings(db, cmd.org, t.records, actor(cmd.by));
        out(
          `org ${r.org}: ${r.created} created, ${r.updated} updated, ${r.unchanged} unchanged, ${r.skipped} skipped (no national code); map version ${r.mapVersion}`,
        );
        return 0;
      }
      case 'export-mappings': {
        const rows = await exportRows(db, cmd.org, { domain: cmd.domain, unmapped: cmd.unmapped });
        writeFileSync(
          cmd.out,
          writeCsv(
            exportHeader(),
            rows.map((r) => EXPORT_COLUMNS.map((k) => r[k])),
          ),
        );
        out(`wrote ${rows.length} rows to ${cmd.out} (UTF-8 with BOM: opens in Excel)`);
        return 0;
      }
      case 'completeness': {
        const r = await completeness(db, cmd.org);
        if (cmd.json) {
          out(JSON.stringify(r));
          return 0;
        }
        out(
          `org ${r.org}: ${r.gapFreeDomains}/${r.totalDomains} domains without gaps (${r.percent}%); local codes resolved ${r.resolvedCodes}/${r.seenCodes}; records held ${r.recordsHeld}; map version ${r.mapVersion}`,
        );
        for (const g of r.gaps)
          out(`  ${g.domain.padEnd(16)} ${GAP_ZH[g.kind]}${g.codes ? ` ×${g.codes}` : ''}${g.recordsHeld ? `, ${g.recordsHeld} records held` : ''}`);
        return 0;
      }
      case 'domains': {
        const ds = await listDomains(db);
        if (cmd.json) out(JSON.stringify(ds));
        else
          for (const d of ds)
            out(
              `${String(d.slot).padStart(2)} ${d.domain.padEnd(17)} ${d.listStatus.padEnd(8)} ${(d.listVersion ?? '-').padEnd(22)} ${String(d.codeCount).padStart(6)}  ${d.nameZh}`,
            );
        return 0;
      }
    }
  } finally {
    await closePool();
  }
}

export function main(argv: string[]): Promise<number> {
  return runCommand(argv, USAGE, parseCommand, run);
}

runIfMain(import.meta.url, main);
