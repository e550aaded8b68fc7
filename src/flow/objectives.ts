// InferenceObjective and InferenceModelRewrite objects
// (inference.networking.x-k8s.io/v1alpha2, GIE §3.2), validated once, and the
// table the request path reads: objective name -> priority. Unset priority
// is 0, negative is sheddable, an unknown objective is priority 0 (GIE).
// Rewrites are validated and kept here; acting on them is not built yet.
import { z } from 'zod';
import { ConfigError, fromZodError, joinPath, yamlPath } from '../config/errors.js';

export const OBJECTIVE_API_VERSION = 'inference.networking.x-k8s.io/v1alpha2';
export const DEFAULT_POOL_REF_GROUP = 'inference.networking.k8s.io';

const poolRef = z.strictObject({
  group: z.string().min(1).optional(),
  kind: z.string().min(1).optional(),
  name: z.string({ error: 'expected the InferencePool name (string)' }).min(1),
});

// Kubernetes metadata carries many fields we do not use (uid, labels, managedFields...).
const metadata = z.looseObject({
  name: z.string({ error: 'expected metadata.name (string)' }).min(1, 'expected a non-empty name'),
  namespace: z.string().optional(),
  creationTimestamp: z.string().optional(),
});

const objectiveSchema = z.looseObject({
  apiVersion: z.literal(OBJECTIVE_API_VERSION, { error: `expected apiVersion ${OBJECTIVE_API_VERSION}` }),
  kind: z.literal('InferenceObjective'),
  metadata,
  spec: z.looseObject({
    priority: z
      .number({ error: 'expected an integer priority' })
      .int('expected an integer priority')
      .nullish(),
    poolRef,
  }),
});

const rewriteSchema = z.looseObject({
  apiVersion: z.literal(OBJECTIVE_API_VERSION, { error: `expected apiVersion ${OBJECTIVE_API_VERSION}` }),
  kind: z.literal('InferenceModelRewrite'),
  metadata,
  spec: z.looseObject({
    poolRef,
    rules: z
      .array(
        z.strictObject({
          matches: z
            .array(
              z.strictObject({
                model: z.strictObject({
                  type: z.literal('Exact', { error: 'expected match type Exact' }).optional(),
                  value: z.string({ error: 'expected the model name to match' }).min(1),
                }),
              }),
            )
            .optional(),
          targets: z
            .array(
              z.strictObject({
                modelRewrite: z.string({ error: 'expected the target model name' }).min(1),
                weight: z
                  .number({ error: 'expected a weight 1..1000000' })
                  .int('expected an integer weight')
                  .min(1, 'expected a weight 1..1000000')
                  .max(1_000_000, 'expected a weight 1..1000000')
                  .optional(),
              }),
            )
            .min(1, 'expected at least one target'),
        }),
      )
      .min(1, 'expected at least one rule'),
  }),
});

export type InferenceObjective = z.infer<typeof objectiveSchema>;
export type InferenceModelRewrite = z.infer<typeof rewriteSchema>;

export interface PoolIdentity {
  name: string;
  /** API groups the pool may be in (default inference.networking.k8s.io only). */
  groups?: readonly string[];
}

/** GIE keeps only objects whose poolRef name and group are the EPP's pool. */
export function refersToPool(ref: z.infer<typeof poolRef>, pool: PoolIdentity): boolean {
  const groups = pool.groups ?? [DEFAULT_POOL_REF_GROUP];
  return ref.name === pool.name && groups.includes(ref.group ?? DEFAULT_POOL_REF_GROUP);
}

/** Validates one object; `at` is its YAML path for errors. */
export function parseObject(
  obj: unknown,
  file: string,
  at: string,
): { objective: InferenceObjective } | { rewrite: InferenceModelRewrite } {
  const kind = (obj as { kind?: unknown } | null)?.kind;
  if (kind === 'InferenceObjective') {
    const r = objectiveSchema.safeParse(obj);
    if (!r.success) throw fromZodError(file, at, r.error);
    return { objective: r.data };
  }
  if (kind === 'InferenceModelRewrite') {
    const r = rewriteSchema.safeParse(obj);
    if (!r.success) throw fromZodError(file, at, r.error);
    return { rewrite: r.data };
  }
  throw new ConfigError(file, joinPath(at, 'kind'), 'kind InferenceObjective or InferenceModelRewrite');
}

/** What the request path reads; replaced whole when its source changes. */
export class ObjectiveTable {
  private readonly priorities: ReadonlyMap<string, number>;

  constructor(
    readonly objectives: readonly InferenceObjective[] = [],
    readonly rewrites: readonly InferenceModelRewrite[] = [],
  ) {
    this.priorities = new Map(objectives.map((o) => [o.metadata.name, o.spec.priority ?? 0]));
  }

  /** Priority of the named objective: 0 when unnamed or unknown. */
  priorityOf(name: string | undefined): number {
    if (!name) return 0;
    return this.priorities.get(name) ?? 0;
  }

  has(name: string): boolean {
    return this.priorities.has(name);
  }
}

/**
 * A YAML document of objects (a list, or a Kubernetes `List` with `items`),
 * validated; objects for other pools are left out when `pool` is given.
 */
export function objectiveTableOf(doc: unknown, file: string, pool?: PoolIdentity): ObjectiveTable {
  let items: unknown[];
  let base: PropertyKey[] = [];
  if (Array.isArray(doc)) items = doc;
  else if (doc === null || doc === undefined) items = [];
  else if (typeof doc === 'object' && Array.isArray((doc as { items?: unknown }).items)) {
    items = (doc as { items: unknown[] }).items;
    base = ['items'];
  } else {
    throw new ConfigError(file, '', 'a YAML list of InferenceObjective and InferenceModelRewrite objects');
  }
  const objectives: InferenceObjective[] = [];
  const rewrites: InferenceModelRewrite[] = [];
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const at = yamlPath([...base, i]);
    const parsed = parseObject(item, file, at);
    const o = 'objective' in parsed ? parsed.objective : parsed.rewrite;
    if (pool && !refersToPool(o.spec.poolRef, pool)) return;
    const key = `${o.kind}/${o.metadata.name}`;
    const prev = seen.get(key);
    if (prev !== undefined) {
      throw new ConfigError(
        file,
        joinPath(at, 'metadata.name'),
        `a unique ${o.kind} name, "${o.metadata.name}" is also at [${prev}]`,
      );
    }
    seen.set(key, i);
    if ('objective' in parsed) objectives.push(parsed.objective);
    else rewrites.push(parsed.rewrite);
  });
  return new ObjectiveTable(objectives, rewrites);
}
