import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.js';
import { objectiveTableOf } from '../../../src/flow/objectives.js';
import { ObjectivesFileSource, readObjectivesFile } from '../../../src/flow/objectives-file.js';
import type { ObjectiveTable } from '../../../src/flow/objectives.js';
import { inferenceObjective } from '../../helpers/objects.js';

const V = 'inference.networking.x-k8s.io/v1alpha2';

const objective = (name: string, priority?: number, pool = 'pool-a', group?: string) =>
  inferenceObjective(name, priority, pool, group);

const rewrite = {
  apiVersion: V,
  kind: 'InferenceModelRewrite',
  metadata: { name: 'ab' },
  spec: {
    poolRef: { name: 'pool-a' },
    rules: [
      {
        matches: [{ model: { type: 'Exact', value: 'm' } }],
        targets: [{ modelRewrite: 'm-v2', weight: 90 }],
      },
    ],
  },
};

describe('objectiveTableOf', () => {
  it('gives each objective its priority; unset is 0, unknown and unnamed are 0', () => {
    const t = objectiveTableOf([objective('batch', -1), objective('chat', 10), objective('plain')], 'f.yaml');
    expect(t.priorityOf('batch')).toBe(-1);
    expect(t.priorityOf('chat')).toBe(10);
    expect(t.priorityOf('plain')).toBe(0);
    expect(t.priorityOf('nobody')).toBe(0);
    expect(t.priorityOf(undefined)).toBe(0);
  });

  it('keeps only the objects whose poolRef is our pool (name and group)', () => {
    const t = objectiveTableOf(
      [
        objective('mine', -5),
        objective('other-pool', -5, 'pool-b'),
        objective('other-group', -5, 'pool-a', 'inference.networking.x-k8s.io'),
        rewrite,
      ],
      'f.yaml',
      { name: 'pool-a' },
    );
    expect(t.objectives.map((o) => o.metadata.name)).toEqual(['mine']);
    expect(t.priorityOf('other-pool')).toBe(0);
    expect(t.rewrites).toHaveLength(1);
  });

  it('accepts a Kubernetes List and an empty file', () => {
    expect(objectiveTableOf({ kind: 'List', items: [objective('a', 3)] }, 'f').priorityOf('a')).toBe(3);
    expect(objectiveTableOf(null, 'f').objectives).toEqual([]);
  });

  it('names file and YAML path of a bad object', () => {
    const bad = (doc: unknown) => {
      try {
        objectiveTableOf(doc, 'obj.yaml');
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad([objective('a', 1), objective('b', 1.5)])).toBe(
      'obj.yaml: [1].spec.priority: expected an integer priority',
    );
    expect(bad([{ ...(objective('a') as object), kind: 'InferenceModel' }])).toBe(
      'obj.yaml: [0].kind: kind InferenceObjective or InferenceModelRewrite',
    );
    expect(bad([objective('a'), objective('a')])).toMatch(
      /^obj\.yaml: \[1\]\.metadata\.name: a unique InferenceObjective name/,
    );
    const noTargets = structuredClone(rewrite);
    noTargets.spec.rules[0]!.targets = [];
    expect(bad([noTargets])).toBe('obj.yaml: [0].spec.rules[0].targets: expected at least one target');
    const heavy = structuredClone(rewrite);
    heavy.spec.rules[0]!.targets[0]!.weight = 2_000_000;
    expect(bad([heavy])).toBe('obj.yaml: [0].spec.rules[0].targets[0].weight: expected a weight 1..1000000');
    expect(bad({ spec: 1 })).toMatch(/^obj\.yaml: <root>: a YAML list/);
  });
});

describe('ObjectivesFileSource', () => {
  it('re-reads the file on change and keeps the last good table when it turns invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'objectives-'));
    const file = join(dir, 'objectives.yaml');
    writeFileSync(file, yaml.dump([objective('batch', -1)]));
    expect(readObjectivesFile(file).priorityOf('batch')).toBe(-1);
    const tables: ObjectiveTable[] = [];
    const errors: Error[] = [];
    const src = new ObjectivesFileSource(file, { pollMs: 30, onError: (e) => errors.push(e) });
    await src.start((t) => tables.push(t));
    try {
      expect(tables).toHaveLength(1);
      writeFileSync(file, yaml.dump([objective('batch', 7)]));
      await expect.poll(() => tables.at(-1)?.priorityOf('batch')).toBe(7);
      writeFileSync(file, '- kind: [');
      await expect.poll(() => errors.length).toBeGreaterThan(0);
      expect(tables.at(-1)?.priorityOf('batch')).toBe(7);
    } finally {
      await src.stop();
    }
  });

  it('refuses to start on an unreadable file', async () => {
    const src = new ObjectivesFileSource('/nonexistent/objectives.yaml');
    await expect(src.start(() => undefined)).rejects.toThrow(
      /objectives\.yaml: <root>: a readable objectives file/,
    );
  });
});
