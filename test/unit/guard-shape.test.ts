// The new-record guard's shape (shared/ingest/store.ts newRecordsGuardPart) names its statement, and
// a single-record statement's name stands for one text (shared/db/sql.ts composeWrites): two guards
// whose texts differ never share a shape.
import { describe, expect, it } from 'vitest';
import { newRecordsGuardPart } from '../../shared/ingest/store.js';

const r = { name: 'emrX', table: 'emr_x' };
const parent = (table: string, id: string) => ({ resource: table, table, orgCode: '1', id });
const guard = (parents: ReturnType<typeof parent>[], keys = 1) =>
  newRecordsGuardPart(
    r,
    Array.from({ length: keys }, (_, i): [string, string] => ['1', `k${i}`]),
    parents,
    false,
  );
const text = (g: ReturnType<typeof guard>) => g.part(0).ctes[0]!.sql;

describe('the new-record guard shape', () => {
  it('keeps the shapes a resource of one parent table had', () => {
    expect(guard([parent('emr_a', 'p')]).shape).toBe('1_emr_a');
    expect(guard([parent('emr_a', 'p'), parent('emr_a', 'q')], 2).shape).toBe('2_emr_a');
    expect(guard([parent('emr_a', 'p'), parent('emr_a', 'q'), parent('emr_a', 's')], 2).shape).toBe('2_emr_ax3');
    expect(guard([]).shape).toBe('1_');
  });

  it('tells apart parents of several tables sent in another order, whose texts differ', () => {
    const a = guard([parent('emr_a', 'p'), parent('emr_b', 'q'), parent('emr_a', 's')], 2);
    const b = guard([parent('emr_a', 'p'), parent('emr_a', 's'), parent('emr_b', 'q')], 2);
    expect(text(a)).not.toBe(text(b));
    expect(a.shape).not.toBe(b.shape);
  });
});
