/**
 * The openGauss guard: finds SQL that PostgreSQL 15 (development, tests) accepts but openGauss 5.0
 * (production) does not. The rules are the table in docs/opengauss.md.
 *
 * What is scanned:
 * - `.sql` files: everything but `--` and block comments and the contents of '...' literals.
 * - `.ts` / `.mjs` / `.js` files: only string and template literals that look like SQL (a statement
 *   keyword as a word, or a fragment starting with a clause keyword), parsed with the TypeScript
 *   compiler, so prose in comments ("we avoid ON CONFLICT because ...") never counts.
 *
 * A file marked as a dialect switch — a line `-- dialect: postgresql` (SQL) or
 * `// sql-dialect: postgresql-only` (TS) — may use the PostgreSQL-only forms of the rules marked
 * `dialectSwitch` (WAL functions, declarative partitioning): the doc's "one file per dialect".
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import ts from 'typescript';

export interface SqlRule {
  id: string;
  pattern: RegExp;
  /** What to do instead (from docs/opengauss.md). */
  advice: string;
  /** Allowed in a file marked as the PostgreSQL side of a dialect switch. */
  dialectSwitch?: boolean;
}

export interface SqlViolation {
  file: string;
  line: number;
  rule: string;
  advice: string;
  /** The offending text. */
  match: string;
}

export const SQL_RULES: readonly SqlRule[] = [
  {
    id: 'on-conflict',
    pattern: /\bON\s+CONFLICT\b/gi,
    advice: 'openGauss 5.0 has no INSERT ... ON CONFLICT: upsert with MERGE INTO ... USING ... or UPDATE-then-INSERT retried on 23505',
  },
  {
    id: 'identity-column',
    pattern: /\bGENERATED\s+(?:ALWAYS|BY\s+DEFAULT)\s+AS\s+IDENTITY\b/gi,
    advice: 'openGauss 5.0 has no identity columns: use bigserial / a sequence, or ids made in the application',
  },
  {
    id: 'listen-notify',
    // As a statement: at the start, after `;` or `(`, or inside a PL/pgSQL block. Not a column
    // called `notify` in a CREATE TABLE.
    pattern: /(?:^|[;(]|\bBEGIN\b|\bTHEN\b|\bELSE\b|\bLOOP\b)\s*(?:UN)?(?:LISTEN|NOTIFY)\b/gi,
    advice: 'openGauss 5.0 does not support LISTEN: poll with SELECT ... FOR UPDATE SKIP LOCKED',
  },
  {
    id: 'pg-notify',
    pattern: /\bpg_notify\s*\(/gi,
    advice: 'openGauss 5.0 does not support LISTEN/NOTIFY: poll with SELECT ... FOR UPDATE SKIP LOCKED',
  },
  {
    id: 'jsonb-function',
    // The doc's list (jsonb_set, jsonb_build_object, to_jsonb, jsonb_agg, gen_random_uuid) and the
    // other builders/patchers its rule "build and patch JSON in TypeScript" covers.
    pattern: /\b(?:jsonb_set|jsonb_set_lax|jsonb_insert|jsonb_build_object|jsonb_build_array|jsonb_object_agg|jsonb_agg|to_jsonb|gen_random_uuid)\s*\(/gi,
    advice: 'openGauss 5.0 lacks this jsonb function: build and patch JSON in TypeScript, store it, read it with -> ->> #> @> ?',
  },
  {
    id: 'add-column-if-not-exists',
    pattern: /\bADD\s+(?:COLUMN\s+)?IF\s+NOT\s+EXISTS\b/gi,
    advice: 'openGauss 5.0 has no ADD COLUMN IF NOT EXISTS: a new numbered migration (the ledger runs it once)',
  },
  {
    id: 'partition-of',
    pattern: /\bPARTITION\s+OF\b/gi,
    advice: 'openGauss 5.0 partitions with PARTITION BY RANGE ... VALUES LESS THAN: keep partitioning out of shared DDL, one file per dialect',
    dialectSwitch: true,
  },
  {
    id: 'declarative-partitioning',
    // DDL only: a window's `OVER (PARTITION BY col)` is fine.
    pattern: /\bPARTITION\s+BY\s+(?:RANGE|LIST|HASH)\s*\(/gi,
    advice: 'partitioning syntax differs on openGauss 5.0: keep it out of shared DDL, one file per dialect',
    dialectSwitch: true,
  },
  {
    id: 'wal-function',
    pattern: /\bpg_(?:\w*_)?wal(?:_\w*|file\w*|dir)?\b/gi,
    advice: 'openGauss 5.0 names these *_xlog_* (pg_current_xlog_location, pg_xlog_location_diff): put them behind the dialect switch',
    dialectSwitch: true,
  },
  {
    id: 'merge-in-with',
    pattern: /\bAS\s*\(\s*MERGE\b/gi,
    advice:
      'MERGE cannot be a WITH query on PostgreSQL 15 nor on openGauss 5.0: compose an UPDATE and an INSERT ... WHERE NOT EXISTS instead (docs/opengauss.md "Composed writes")',
  },
  {
    id: 'unnest-several-arrays',
    // `unnest(` with a comma at its own level (balanced parentheses inside are skipped), or ROWS FROM.
    pattern: /\bunnest\s*\((?:[^(),]|\([^()]*\))*,|\bROWS\s+FROM\s*\(/gi,
    advice:
      'openGauss 5.0\'s unnest takes one array (no FROM unnest(a, b) / ROWS FROM): one unnest per column in the select list, SELECT unnest($1::t[]) AS a, unnest($2::u[]) AS b (docs/opengauss.md "Statement sources")',
  },
  {
    id: 'security-invoker-view',
    pattern: /\bsecurity_invoker\b/gi,
    advice:
      "openGauss 5.0 has no security_invoker views: a view reads its tables with its owner's rights; filter the rows in the view and create it WITH (security_barrier) (docs/opengauss.md)",
  },
  {
    id: 'to-regclass',
    pattern: /\bto_reg(?:class|type|proc|procedure|oper|operator|role|namespace|collation)\s*\(/gi,
    advice:
      "openGauss 5.0 has no to_regclass and its kin (PostgreSQL 9.4's): look the name up in the catalogs, SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1",
  },
  {
    id: 'lock-timeout',
    pattern: /\block_timeout\b/gi,
    advice:
      'openGauss 5.0 has no lock_timeout (its lockwait_timeout is a sysadmin\'s setting): behind the dialect switch (infra/db/migrate.ts lockBoundSql, docs/opengauss.md "Lock waits")',
    dialectSwitch: true,
  },
  {
    id: 'returning-after-on-duplicate-key',
    pattern: /\bON\s+DUPLICATE\s+KEY\b[^;]*?\bRETURNING\b/gi,
    advice: 'openGauss 5.0 allows no RETURNING with ON DUPLICATE KEY UPDATE: use MERGE, then SELECT',
  },
];

const DIALECT_MARK = /^\s*(?:--\s*dialect:\s*postgres(?:ql)?\b|\/\/\s*sql-dialect:\s*postgres(?:ql)?-only\b)/im;

/** Whether the file declares itself the PostgreSQL side of a dialect switch. */
export function isDialectSwitch(source: string): boolean {
  return DIALECT_MARK.test(source);
}

/**
 * Blanks `--` and block comments and the contents of '...' literals (keeping every newline, so
 * offsets and lines still match the original). Double-quoted identifiers are kept.
 */
export function stripSqlComments(sql: string): string {
  const out = sql.split('');
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to && k < out.length; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? sql.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end < 0 ? sql.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === "'") {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === "'" && sql[j + 1] === "'") j += 2;
        else if (sql[j] === "'") break;
        else j++;
      }
      blank(i + 1, j);
      i = j + 1;
    } else if (c === '"') {
      const end = sql.indexOf('"', i + 1);
      i = end < 0 ? sql.length : end + 1;
    } else {
      i++;
    }
  }
  return out.join('');
}

/** Applies the rules to SQL text; `line` is the line of the text's first character. */
export function scanSql(sql: string, opts: { file?: string; line?: number; dialectSwitch?: boolean } = {}): SqlViolation[] {
  const text = stripSqlComments(sql);
  const found: SqlViolation[] = [];
  for (const rule of SQL_RULES) {
    if (opts.dialectSwitch && rule.dialectSwitch) continue;
    for (const m of text.matchAll(rule.pattern)) {
      // Report the line of the construct itself, not of a leading `;` or newline.
      const at = (m.index ?? 0) + (m[0].length - m[0].trimStart().length);
      const line = (opts.line ?? 1) + countNewlines(text, at);
      found.push({ file: opts.file ?? '<sql>', line, rule: rule.id, advice: rule.advice, match: m[0].trim().replace(/\s+/g, ' ') });
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

function countNewlines(s: string, end: number): number {
  let n = 0;
  for (let i = 0; i < end; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}

const STATEMENT_WORD = /\b(?:SELECT|INSERT|UPDATE|DELETE|MERGE|CREATE|ALTER)\b/i;
const FRAGMENT_START = /^\s*(?:ON|RETURNING|WHERE|SET|VALUES|FROM|WITH|DO|DROP|TRUNCATE|LISTEN|UNLISTEN|NOTIFY|GENERATED|ADD|PARTITION)\b/i;

/** Whether a string literal reads as SQL (a statement, or a fragment of one glued on later). */
export function looksLikeSql(text: string): boolean {
  return STATEMENT_WORD.test(text) || FRAGMENT_START.test(text);
}

export interface SqlFragment {
  /** The literal's source text between its quotes; `${...}` blanked to spaces. */
  text: string;
  /** 1-based line of the text's first character. */
  line: number;
}

/** The SQL-looking string and template literals of a TS/JS source file. */
export function sqlFragments(source: string, fileName = 'source.ts'): SqlFragment[] {
  const kind = /\.(?:m?js|cjs)$/.test(fileName) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, kind);
  const found: SqlFragment[] = [];
  const take = (node: ts.Node, holes: Array<[number, number]>): void => {
    const start = node.getStart(sf) + 1; // after the opening quote or backtick
    const end = node.getEnd() - 1;
    const chars = source.slice(start, end).split('');
    for (const [from, to] of holes) {
      for (let k = from - start; k < to - start; k++) if (chars[k] !== undefined && chars[k] !== '\n') chars[k] = ' ';
    }
    const text = chars.join('');
    if (looksLikeSql(text)) found.push({ text, line: sf.getLineAndCharacterOfPosition(start).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
      take(node, []);
    } else if (ts.isTemplateExpression(node)) {
      // Blank each `${ expression }`; the SQL around them stays where it was.
      const holes: Array<[number, number]> = [];
      let prevEnd = node.head.getEnd();
      for (const span of node.templateSpans) {
        holes.push([prevEnd - 2, span.literal.getStart(sf) + 1]);
        prevEnd = span.literal.getEnd();
        visit(span.expression); // SQL nested in a substitution is scanned on its own
      }
      take(node, holes);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** Scans one file, by its extension. `name` is how violations name it. */
export function scanFile(path: string, name = path): SqlViolation[] {
  const source = readFileSync(path, 'utf8');
  const dialectSwitch = isDialectSwitch(source);
  if (extname(path) === '.sql') return scanSql(source, { file: name, dialectSwitch });
  return sqlFragments(source, path).flatMap((f) => scanSql(f.text, { file: name, line: f.line, dialectSwitch }));
}

/** The folders holding the project's SQL and the code that sends it. */
export const SOURCE_DIRS = ['shared', 'functions', 'infra', 'schemas'] as const;
const SKIP_DIRS = new Set(['node_modules', 'dist', 'build', 'test', '.data', '.git']);
const SOURCE_EXT = new Set(['.sql', '.ts', '.mts', '.mjs', '.js']);

/** Every scannable file under `dirs` of `root` (relative paths, sorted). */
export function sourceFiles(root: string, dirs: readonly string[] = SOURCE_DIRS): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return; // a folder that does not exist (yet)
    }
    for (const e of entries) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) {
        if (!SKIP_DIRS.has(e)) walk(p);
      } else if (SOURCE_EXT.has(extname(e)) && !e.endsWith('.d.ts')) {
        files.push(relative(root, p));
      }
    }
  };
  for (const d of dirs) walk(join(root, d));
  return files.sort();
}

/**
 * Files that hold no SQL but text the heuristics take for it, each with why. A listed file may not
 * reach a database (the dialect test checks it imports neither pg nor shared/db).
 */
export const NOT_SQL: Readonly<Record<string, string>> = {
  'infra/openfaas/render.ts': "renders nginx and Kubernetes text: its `listen` lines are nginx's directive, not SQL LISTEN",
};

/** Scans the project: every source file under SOURCE_DIRS, but NOT_SQL. */
export function scanProject(root: string): { files: string[]; violations: SqlViolation[] } {
  const files = sourceFiles(root);
  return { files, violations: files.filter((f) => !(f in NOT_SQL)).flatMap((f) => scanFile(join(root, f), f)) };
}

/** `file:line  rule  match  — advice`, one per line. */
export function formatViolations(vs: readonly SqlViolation[]): string {
  return vs.map((v) => `${v.file}:${v.line}  [${v.rule}]  ${v.match}  — ${v.advice}`).join('\n');
}
