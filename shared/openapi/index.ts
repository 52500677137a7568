/**
 * The OpenAPI 3.1 document of the data API (HIS → front), generated from the zod schemas of the
 * resources (schemas/) and of the answer envelope (shared/http/errors.ts) — never hand-written,
 * so it cannot drift from what the pipeline validates. Served at /openapi.json on the data port,
 * with a readable reference page at /openapi.html (./page.ts).
 */
import { documentItems } from '../../schemas/index.js';
import { z } from 'zod';
import type { Resource } from '../../schemas/resource.js';
import type { FieldDef } from '../../schemas/fields.js';
import { AnswerSchema, ErrorCodes, FieldIssueSchema } from '../http/errors.js';

type Json = Record<string, unknown>;

const TIME_DOC =
  'yyyy-MM-dd HH:mm:ss (hospital local time, Asia/Shanghai) | yyyy-MM-dd | ISO 8601 with offset | epoch milliseconds | yyyyMMdd[HHmmss] | a java.time array as Jackson writes it ([y, M, d] or [y, M, d, H, m, s?, nanos?])';

function jsonSchema(schema: z.ZodType): Json {
  const s = z.toJSONSchema(schema, {
    io: 'output',
    unrepresentable: 'any',
    override: (ctx) => {
      const def = (ctx.zodSchema as { _zod: { def: { type: string } } })._zod.def;
      if (def.type === 'date') {
        for (const k of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as Json)[k];
        Object.assign(ctx.jsonSchema, {
          type: ['string', 'integer', 'array'],
          items: { type: 'integer', minimum: 0 },
          minItems: 3,
          maxItems: 7,
          description: TIME_DOC,
          examples: ['2026-11-26 09:30:00'],
        });
      }
    },
  }) as Json;
  delete s.$schema;
  return s;
}

/** The JSON Schema of one field: the zod schema's, plus what the declaration knows. */
function fieldSchema(schema: z.ZodType, d: FieldDef): Json {
  const s = jsonSchema(schema);
  const extra: Json = { title: d.label, 'x-column': d.column };
  if (d.domain) extra['x-value-domain'] = d.domain;
  if (d.personal) extra['x-personal-data'] = d.personal;
  if (d.kind === 'int' || d.kind === 'decimal') {
    // The pipeline takes a number as a string of digits too (what many HIS views emit): say so.
    extra.description = 'number, or a string of digits';
    const digits = { type: 'string', pattern: d.kind === 'int' ? '^-?\\d+$' : '^-?\\d+(\\.\\d+)?$' };
    const variants = (s.anyOf as Json[] | undefined) ?? [s];
    return { anyOf: [...variants, digits], ...extra };
  }
  return { ...s, ...extra };
}

export function resourceSchema(r: Resource): Json {
  const shape = r.schema.shape as Record<string, z.ZodType>;
  const properties: Json = {};
  for (const [k, d] of Object.entries(r.fields)) properties[k] = fieldSchema(shape[k]!, d);
  return {
    type: 'object',
    title: `${r.title} (${r.name})`,
    description:
      `Table ${r.table}; deadline class ${r.deadline}; business time ${r.businessTimes.join(' → ')}. ` +
      'Keys may also be sent as UPPER_SNAKE or snake_case; unknown keys are kept and reported as warnings; "" is null.',
    required: r.required,
    properties,
    additionalProperties: true,
  };
}

const errorResponses: Json = Object.fromEntries(
  Object.entries(
    Object.values(ErrorCodes).reduce<Record<number, string[]>>((acc, e) => {
      (acc[e.status] ??= []).push(e.name);
      return acc;
    }, {}),
  ).map(([status, names]) => [
    status,
    { description: names.join(' / '), content: { 'application/json': { schema: { $ref: '#/components/schemas/Answer' } } } },
  ]),
);

/** The resources ordered so that every record's parents come before it. */
export function parentsFirst(resources: Resource[]): Resource[] {
  const byName = new Map(resources.map((r) => [r.name, r]));
  const out: Resource[] = [];
  const seen = new Set<string>();
  const visit = (r: Resource) => {
    if (seen.has(r.name)) return;
    seen.add(r.name);
    for (const p of r.parents) {
      const parent = byName.get(p.resource);
      if (parent) visit(parent);
    }
    out.push(r);
  };
  resources.forEach(visit);
  return out;
}

export interface OpenApiOptions {
  version: string;
  /** A valid example record per resource (the HIS generator's samples). */
  example?: (resource: string) => Json | undefined;
  /** Whether `POST /function/<fn>` without a resource takes this resource (docs/his-guide.md). */
  primary?: (r: Resource) => boolean;
}

export function openApiDocument(resources: Resource[], o: OpenApiOptions): Json {
  const paths: Json = {};
  const schemas: Json = {
    Answer: jsonSchema(AnswerSchema),
    FieldIssue: jsonSchema(FieldIssueSchema),
  };
  // Parents before their children: the examples, posted in this order, create their own parents.
  for (const r of parentsFirst(resources)) {
    schemas[r.name] = resourceSchema(r);
    const example = o.example?.(r.name);
    // A header takes its items in one document (docs/his-guide.md §1): the items without orgCode
    // and link, as the document supplies both.
    const doc = documentItems(r);
    if (doc) schemas[`${r.name}Document`] = documentSchema(r, doc);
    const itemExample = doc && o.example?.(doc.item.name);
    const docExample =
      doc && example && itemExample
        ? { ...example, items: [Object.fromEntries(Object.entries(itemExample).filter(([k]) => k !== 'orgCode' && k !== doc.link))] }
        : undefined;
    const base = `/hclient/emr/receive/${r.name}`;
    paths[base] = {
      post: postOperation(r, doc, example, docExample, o.primary),
      delete: deleteOperation(r),
    };
    paths[`${base}/{id}`] = { get: fateOperation(r) };
    paths[`${base}/_reconcile`] = { post: reconcileOperation(r) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'cdc-front 数据接口（HIS → 前置软件）',
      version: o.version,
      description:
        'The data API of the hospital front-end of the national infectious-disease surveillance system. ' +
        'Answers use the envelope existing adapters read: {result, desc, id, errorCode, errorName}. ' +
        'Every error names each failing field and rule; nothing is half-stored.',
    },
    servers: [{ url: '/' }],
    tags: [...new Set(resources.map((r) => r.fn))].map((name) => ({ name })),
    paths,
    components: { schemas },
  };
}

/** A header with its items (documentItems), in one document. */
type DocumentItems = NonNullable<ReturnType<typeof documentItems>>;

/** The schema of a header's document: the header with an `items` array of its items, each without orgCode and link. */
function documentSchema(r: Resource, doc: DocumentItems): Json {
  const itemSchema = resourceSchema(doc.item) as { required?: string[] };
  return {
    allOf: [
      { $ref: `#/components/schemas/${r.name}` },
      {
        type: 'object',
        properties: {
          items: {
            type: 'array',
            maxItems: 5000,
            items: { ...itemSchema, required: (itemSchema.required ?? []).filter((k) => k !== 'orgCode' && k !== doc.link) },
          },
        },
      },
    ],
    description: `${r.title}及其${doc.item.title}（一份报告，整体保存）/ a header with its items, stored together`,
  };
}

/** POST of a record, a batch, or (for a header) a document: insert or update. */
function postOperation(
  r: Resource,
  doc: DocumentItems | undefined,
  example: Json | undefined,
  docExample: Json | undefined,
  primary: OpenApiOptions['primary'],
): Json {
  const ref = { $ref: `#/components/schemas/${r.name}` };
  const docSchema = doc && { $ref: `#/components/schemas/${r.name}Document` };
  return {
    operationId: `post_${r.name}`,
    tags: [r.fn],
    summary: `${r.title}：新增或更新 (insert or update)`,
    description:
      `Also reachable as /function/${r.fn}/${r.name}${primary?.(r) ? ` and as /function/${r.fn}` : ''}. ` +
      (doc
        ? `A ${r.name} with an \`items\` array of ${doc.item.name} is one document: validated whole (a failing item is named items[i].field and refuses it all) and stored in one transaction; items may leave out ${doc.link} and orgCode (the header's are taken). `
        : '') +
      'A JSON array is a batch (one result per record): 200 when at least one record was accepted, 400 when none was. ' +
      "Header X-Test-Mode: 1 marks test records. The example names its parents by their examples' ids: posted in this document's order, every example is stored, none held.",
    requestBody: {
      required: true,
      content: {
        'application/json': {
          schema: { oneOf: [ref, { type: 'array', items: ref, maxItems: 500 }, ...(docSchema ? [docSchema] : [])] },
          ...(example
            ? {
                examples: {
                  record: { summary: '一条记录 (one record)', value: example },
                  ...(docExample ? { document: { summary: '报告及其条目 (a header with its items)', value: docExample } } : {}),
                },
              }
            : {}),
        },
      },
    },
    responses: {
      200: {
        description: '已保存（持久化，将上报至每个平台）/ stored: durable, will reach every platform',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Answer' } } },
      },
      ...errorResponses,
    },
  };
}

/** DELETE of a record by orgCode and id: retire. */
function deleteOperation(r: Resource): Json {
  return {
    operationId: `delete_${r.name}`,
    tags: [r.fn],
    summary: `${r.title}：作废 (retire)`,
    requestBody: {
      required: true,
      content: {
        'application/json': {
          schema: { type: 'object', required: ['orgCode', 'id'], properties: { orgCode: { type: 'string' }, id: { type: 'string' } } },
        },
      },
    },
    responses: {
      200: { description: '已作废 / retired', content: { 'application/json': { schema: { $ref: '#/components/schemas/Answer' } } } },
      ...errorResponses,
    },
  };
}

/** GET of a record's fate: stored, held, forwarded, rejected. */
function fateOperation(r: Resource): Json {
  return {
    operationId: `fate_${r.name}`,
    tags: [r.fn],
    summary: `${r.title}：查询记录状态 (the record's fate: stored, held, forwarded, rejected)`,
    parameters: [
      { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
      { name: 'orgCode', in: 'query', required: true, schema: { type: 'string' } },
    ],
    responses: {
      200: { description: 'fate', content: { 'application/json': { schema: { $ref: '#/components/schemas/Answer' } } } },
      404: {
        description: '未收到 / unknown record (result:false, errorCode NOT_FOUND)',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Answer' } } },
      },
    },
  };
}

/** POST of a day's ids to reconcile: which are held, missing or extra. */
function reconcileOperation(r: Resource): Json {
  return {
    operationId: `reconcile_${r.name}`,
    tags: [r.fn],
    summary: `${r.title}：对账 (reconcile ids of a day)`,
    requestBody: {
      required: true,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            required: ['orgCode', 'date', 'ids'],
            properties: {
              orgCode: { type: 'string' },
              date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
              ids: { type: 'array', items: { type: 'string' }, maxItems: 10000 },
            },
          },
        },
      },
    },
    responses: { 200: { description: 'held / missing / extra' }, 400: { description: 'bad request' } },
  };
}
