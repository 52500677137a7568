// What a production start checks before it runs the bundles (infra/build/sources.ts): the record
// make build writes of the files they were built from, compared with the files as they are now.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUILD_RECORD, buildRecordProblem, sourceFiles, writeBuildRecord } from '../../infra/build/sources.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A project folder with a few sources, and what builds and runs write beside them. */
function project(): string {
  dir = mkdtempSync(join(tmpdir(), 'cdc-build-record-'));
  const put = (path: string, text: string) => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  put('stack.yml', 'functions: {}\n');
  put('package.json', '{}\n');
  put('functions/patient/handler.ts', 'export default 1;\n');
  put('functions/patient/dist/index.js', 'bundle\n');
  put('infra/db/0001_core.sql', 'select 1;\n');
  put('shared/a.ts', 'export const a = 1;\n');
  put('schemas/b.ts', 'export const b = 1;\n');
  put('docs/x.md', 'not a source\n');
  return dir;
}

describe('the build record', () => {
  it('lists the sources and stack.yml, not the bundles or anything outside the source folders', () => {
    const files = Object.keys(sourceFiles(project()));
    expect(files).toEqual(['functions/patient/handler.ts', 'infra/db/0001_core.sql', 'package.json', 'schemas/b.ts', 'shared/a.ts', 'stack.yml']);
  });

  it('a start with no record is refused, naming make build', () => {
    expect(buildRecordProblem(project())).toMatch(/no record of a build \(dist\/sources\.json\): run make build/);
  });

  it('passes the files it was written from, and bundles rebuilt or docs changed since', () => {
    const root = project();
    writeBuildRecord(root);
    expect(buildRecordProblem(root)).toBeNull();
    writeFileSync(join(root, 'functions/patient/dist/index.js'), 'another bundle\n');
    writeFileSync(join(root, 'docs/x.md'), 'edited\n');
    expect(buildRecordProblem(root)).toBeNull();
  });

  it('names what changed, came or went since the build (a pull without make build)', () => {
    const root = project();
    writeBuildRecord(root, new Date('2026-12-01T02:00:00Z'));
    writeFileSync(join(root, 'shared/a.ts'), 'export const a = 2;\n');
    writeFileSync(join(root, 'infra/db/0002_more.sql'), 'select 2;\n');
    rmSync(join(root, 'schemas/b.ts'));
    expect(buildRecordProblem(root)).toBe(
      `the bundles were built (2026-12-01T02:00:00.000Z) from other sources than the ones in ${root} ` +
        '(changed shared/a.ts; new infra/db/0002_more.sql; gone schemas/b.ts): run make build',
    );
  });

  it('a record that cannot be read is refused', () => {
    const root = project();
    mkdirSync(join(root, 'dist'), { recursive: true });
    writeFileSync(join(root, BUILD_RECORD), '{"files":');
    expect(buildRecordProblem(root)).toMatch(/cannot be read: run make build/);
  });
});
