// Where make up and the operator commands look (infra/cli/locate.ts): the embedded server's database
// is PG_DATABASE, else the one make up remembered when it was last given, else cdcfront
// (docs/backup.md "Restore": a start without the variable stays on a restored database).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { locate, PG_DATABASE_FILE } from '../../infra/cli/locate.js';

const dirs: string[] = [];
const dataDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'cdc-locate-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the embedded database', () => {
  it('is cdcfront by default, the remembered one without PG_DATABASE, and PG_DATABASE when given', () => {
    const d = dataDir();
    expect(locate({ CDC_DATA_DIR: d })).toMatchObject({ pgDatabase: 'cdcfront', pgDatabaseFrom: 'default' });
    writeFileSync(join(d, PG_DATABASE_FILE), 'cdcfront_restored\n');
    expect(locate({ CDC_DATA_DIR: d })).toMatchObject({ pgDatabase: 'cdcfront_restored', pgDatabaseFrom: 'remembered' });
    expect(locate({ CDC_DATA_DIR: d, PG_DATABASE: '' })).toMatchObject({ pgDatabase: 'cdcfront_restored', pgDatabaseFrom: 'remembered' });
    expect(locate({ CDC_DATA_DIR: d, PG_DATABASE: 'cdcfront' })).toMatchObject({ pgDatabase: 'cdcfront', pgDatabaseFrom: 'PG_DATABASE' });
  });

  it('a remembered name that is not one is an error naming the file, never a database of that name', () => {
    const d = dataDir();
    writeFileSync(join(d, PG_DATABASE_FILE), 'x; DROP DATABASE cdcfront\n');
    expect(() => locate({ CDC_DATA_DIR: d })).toThrow(new RegExp(`${PG_DATABASE_FILE}: not a database name`));
    expect(() => locate({ CDC_DATA_DIR: d, PG_DATABASE: 'Bad-Name' })).toThrow(/PG_DATABASE: a database name/);
  });
});
