/**
 * A resource of the national data set, as a declaration: its name on the wire, its table, the
 * function that receives it, its deadline class and business time, its fields and cross-field
 * rules. The one ingest pipeline (shared/ingest) does the rest; twenty resources are twenty
 * declarations, not twenty handlers.
 */
import { z } from 'zod';
import { objectOf, type FieldMap, type ShapeOf } from './fields.js';
import type { FieldIssue } from '../shared/http/errors.js';

/** Deadline classes of the notice (HIS → front): realtime, within 2 hours, same day, next day. */
export const DeadlineClass = z.enum(['realtime', '2h', 'T+0', 'T+1']);
export type DeadlineClass = z.infer<typeof DeadlineClass>;

/**
 * A reference from a record to its parent: the child's `field` holds the parent's id, within the
 * same orgCode (emrExLabItem.exLabId → emrExLab.id, patientId → emrPatientInfo.id).
 */
export interface ParentRef {
  resource: string;
  field: string;
}

export interface ResourceSpec<F extends FieldMap> {
  /** Name used by the HIS adapters: /hclient/emr/receive/<name>. */
  name: string;
  table: string;
  /** Chinese name, for people. */
  title: string;
  /** The receive function that owns the resource (stack.yml function name). */
  fn: string;
  deadline: DeadlineClass;
  /** The field whose time starts the deadline clock (report time, order time, ...). */
  businessTime: keyof F & string;
  /**
   * Where the business time comes from when `businessTime` is not sent, in order (report time →
   * examination time → …); operationTime ends every chain that has it (docs/data-set.md "Business
   * time"). None sent: the lateness is unknown.
   */
  businessTimeFallbacks?: Array<keyof F & string>;
  fields: F;
  /** Cross-field rules (ID checksum, time order, ...), each returning the issues it finds. */
  rules?: Array<(rec: Record<string, unknown>, now: Date) => FieldIssue[]>;
  /**
   * The parent records this record's reference fields point to, e.g. emrExLabItem.exLabId →
   * emrExLab, patientId → emrPatientInfo. The parent is looked up by (orgCode, value of field); a
   * child that arrives before its parent is held, not dropped (the orphan mechanism reads these).
   */
  parents?: Array<ParentRef & { field: keyof F & string }>;
  /**
   * For a resource whose record id travels under another name (baseDept: deptCode). The pipeline
   * keys every resource by (orgCode, id); when `id` is not sent, it is taken from this field.
   */
  keyField?: keyof F & string;
  /**
   * The table's own field naming its organisation, for a table without orgCode in the data set (the
   * report card: reportOrgCode). The org of a record that sends no orgCode is taken from it first
   * (docs/his-guide.md "机构").
   */
  orgField?: keyof F & string;
}

export interface Resource<F extends FieldMap = FieldMap> extends Omit<ResourceSpec<F>, 'parents'> {
  parents: ParentRef[];
  /** businessTime, its fallbacks, then operationTime: the first one a record carries is its business time. */
  businessTimes: string[];
  schema: z.ZodObject<ShapeOf<F>>;
  /** Key fields: every resource is keyed by (orgCode, id) — orgCode is part of every key. */
  key: readonly ['orgCode', 'id'];
  required: string[];
}

export function defineResource<F extends FieldMap>(spec: ResourceSpec<F>): Resource<F> {
  for (const k of ['id', 'orgCode'] as const) {
    if (!spec.fields[k]) throw new Error(`resource ${spec.name}: key field ${k} is not declared`);
  }
  for (const p of spec.parents ?? []) {
    if (!spec.fields[p.field]) throw new Error(`resource ${spec.name}: parent reference ${p.field} is not declared`);
  }
  if (spec.keyField && !spec.fields[spec.keyField]) throw new Error(`resource ${spec.name}: key field ${spec.keyField} is not declared`);
  if (spec.orgField && !spec.fields[spec.orgField]) throw new Error(`resource ${spec.name}: org field ${spec.orgField} is not declared`);
  for (const k of spec.businessTimeFallbacks ?? []) {
    if (!spec.fields[k]) throw new Error(`resource ${spec.name}: business time fallback ${k} is not declared`);
  }
  const chain = [spec.businessTime, ...(spec.businessTimeFallbacks ?? []), ...(spec.fields.operationTime ? ['operationTime'] : [])];
  // Built at first use: a function validates only the resources it receives, and building the zod
  // schemas of all twenty at load cost every function's start tens of milliseconds (docs/bench.md "P7").
  let schema: z.ZodObject<ShapeOf<F>> | undefined;
  return {
    ...spec,
    parents: spec.parents ?? [],
    businessTimes: [...new Set(chain)],
    get schema() {
      schema ??= objectOf(spec.fields);
      return schema;
    },
    key: ['orgCode', 'id'] as const,
    required: Object.entries(spec.fields)
      .filter(([, d]) => d.required)
      .map(([k]) => k),
  };
}

export type RecordOf<R> = R extends Resource<infer F> ? z.infer<z.ZodObject<ShapeOf<F>>> : never;
