// Validates Kubernetes objects against the openAPIV3Schema of upstream CRDs
// (GIE's InferencePool, Gateway API's Gateway/HTTPRoute), as the API server
// would on create: defaults applied, unknown fields refused (kubectl's strict
// field validation), list-type uniqueness checked. CEL rules
// (x-kubernetes-validations) are evaluated only where cel-equivalents.ts has
// a JavaScript reading; the rest are reported back, never silently passed.
// The CRD files come from the Go module cache (.ci/tools.sh exports the dirs).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import yaml from 'js-yaml';
import { CEL_EQUIVALENTS, normalizeRule } from './cel-equivalents.js';

type Json = Record<string, unknown>;
type Schema = Json;

export type CrdDirVar = 'GIE_CRD_DIR' | 'GATEWAY_API_CRD_DIR';

/** The directory an env var names; a clear error when it is unset or wrong. */
export function crdDir(name: CrdDirVar): string {
  const dir = process.env[name];
  if (!dir)
    throw new Error(
      `${name} is not set: run \`source .ci/tools.sh\` (it fetches the upstream CRDs with ` +
        '`go mod download` and exports GIE_CRD_DIR and GATEWAY_API_CRD_DIR)',
    );
  if (!existsSync(dir)) throw new Error(`${name}=${dir} does not exist; run: source .ci/tools.sh`);
  return dir;
}

export interface CrdVersion {
  apiVersion: string;
  kind: string;
  file: string;
  schema: Schema;
}

/** Every served version of every CRD in the directories, keyed "apiVersion kind". */
export function loadCrds(dirs: string[]): Map<string, CrdVersion> {
  const out = new Map<string, CrdVersion>();
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml'))) {
      const file = join(dir, f);
      for (const doc of yaml.loadAll(readFileSync(file, 'utf8')) as Json[]) {
        if (doc?.kind !== 'CustomResourceDefinition') continue;
        const spec = doc.spec as {
          group: string;
          names: { kind: string };
          versions: { name: string; served: boolean; schema?: { openAPIV3Schema?: Schema } }[];
        };
        for (const v of spec.versions) {
          if (!v.served || !v.schema?.openAPIV3Schema) continue;
          const apiVersion = `${spec.group}/${v.name}`;
          out.set(`${apiVersion} ${spec.names.kind}`, {
            apiVersion,
            kind: spec.names.kind,
            file,
            schema: v.schema.openAPIV3Schema,
          });
        }
      }
    }
  }
  return out;
}

export interface CelRule {
  path: string;
  rule: string;
  message: string;
}

export interface Validation {
  /** Schema errors (ajv) and failed CEL rules that have an equivalent. */
  errors: string[];
  /** CEL rules that apply to the object but have no equivalent here. */
  unevaluated: CelRule[];
}

export class CrdValidator {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly crds: Map<string, CrdVersion>) {
    this.ajv = new Ajv({
      strict: false, // CRD schemas carry keywords JSON Schema does not know
      allErrors: true,
      useDefaults: true, // the API server defaults before it validates (CEL sees defaults)
      unicodeRegExp: false, // CRD patterns are RE2 syntax, closest to non-unicode JS
      formats: {
        // Type hints for the Go client; the API server does not range-check them.
        int32: true,
        int64: true,
        'date-time': (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(s),
        ipv4: (s: string) => isIPv4(s),
        ipv6: (s: string) => isIPv6(s),
      },
    });
    this.ajv.addKeyword({
      keyword: 'x-kubernetes-list-type',
      type: 'array',
      schemaType: 'string',
      validate: (listType: string, data: unknown[], parent?: Schema) => {
        if (listType === 'set') return distinct(data.map((x) => JSON.stringify(x)));
        if (listType === 'map') {
          const keys = (parent?.['x-kubernetes-list-map-keys'] as string[] | undefined) ?? [];
          return distinct(data.map((x) => JSON.stringify(keys.map((k) => (x as Json)[k]))));
        }
        return true; // atomic
      },
    });
  }

  has(apiVersion: string, kind: string): boolean {
    return this.crds.has(`${apiVersion} ${kind}`);
  }

  /** Validates a copy of obj (defaults are applied to the copy only). */
  validate(obj: { apiVersion: string; kind: string }): Validation {
    const key = `${obj.apiVersion} ${obj.kind}`;
    const crd = this.crds.get(key);
    if (!crd)
      throw new Error(`no served CRD version for ${key}; loaded: ${[...this.crds.keys()].join(', ')}`);
    let fn = this.compiled.get(key);
    if (!fn) {
      fn = this.ajv.compile(toValidationSchema(crd.schema, true));
      this.compiled.set(key, fn);
    }
    const copy = structuredClone(obj);
    const errors = fn(copy) ? [] : (fn.errors ?? []).map(formatError);
    const unevaluated: CelRule[] = [];
    for (const r of celRules(crd.schema, copy, '')) {
      const check = CEL_EQUIVALENTS.get(normalizeRule(r.rule));
      if (!check) unevaluated.push(r);
      else if (!check(r.self)) errors.push(`${r.path || '/'}: ${r.message} (CEL: ${r.rule})`);
    }
    return { errors, unevaluated };
  }
}

function distinct(keys: string[]): boolean {
  return new Set(keys).size === keys.length;
}

function formatError(e: ErrorObject): string {
  const extra = e.keyword === 'additionalProperties' ? ` '${String(e.params.additionalProperty)}'` : '';
  return `${e.instancePath || '/'}: ${e.message ?? e.keyword}${extra}`;
}

/**
 * The CRD schema as ajv should read it: objects with declared properties
 * refuse other keys (the API server prunes them, and kubectl's strict field
 * validation rejects them) unless x-kubernetes-preserve-unknown-fields; the
 * top-level metadata is opaque (CRD schemas only say type: object; the API
 * server checks ObjectMeta itself); int-or-string gets its two types.
 */
function toValidationSchema(node: Schema, root = false): Schema {
  const out: Schema = { ...node };
  delete out.description;
  const props = node.properties as Record<string, Schema> | undefined;
  if (props) {
    out.properties = Object.fromEntries(
      Object.entries(props).map(([k, v]) => [
        k,
        root && k === 'metadata' ? { type: 'object' } : toValidationSchema(v),
      ]),
    );
    if (node.additionalProperties === undefined && node['x-kubernetes-preserve-unknown-fields'] !== true)
      out.additionalProperties = false;
  }
  if (typeof node.additionalProperties === 'object')
    out.additionalProperties = toValidationSchema(node.additionalProperties as Schema);
  if (node.items && typeof node.items === 'object') out.items = toValidationSchema(node.items as Schema);
  for (const k of ['anyOf', 'allOf', 'oneOf'] as const)
    if (Array.isArray(node[k])) out[k] = (node[k] as Schema[]).map((s) => toValidationSchema(s));
  if (node['x-kubernetes-int-or-string'] === true && !node.anyOf)
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  return out;
}

/** The CEL rules on the schema nodes the (defaulted) object actually reaches. */
function celRules(schema: Schema, data: unknown, path: string): (CelRule & { self: unknown })[] {
  const out: (CelRule & { self: unknown })[] = [];
  const visit = (s: Schema, d: unknown, p: string): void => {
    for (const v of (s['x-kubernetes-validations'] as { rule: string; message?: string }[] | undefined) ?? [])
      out.push({ path: p, rule: v.rule, message: v.message ?? `failed rule: ${v.rule}`, self: d });
    if (Array.isArray(d)) {
      if (s.items) d.forEach((x, i) => visit(s.items as Schema, x, `${p}/${i}`));
    } else if (d && typeof d === 'object') {
      const props = (s.properties as Record<string, Schema> | undefined) ?? {};
      const extra =
        typeof s.additionalProperties === 'object' ? (s.additionalProperties as Schema) : undefined;
      for (const [k, v] of Object.entries(d as Json)) {
        const child = props[k] ?? extra;
        if (child && !(p === '' && k === 'metadata')) visit(child, v, `${p}/${k}`);
      }
    }
  };
  visit(schema, data, path);
  return out;
}
