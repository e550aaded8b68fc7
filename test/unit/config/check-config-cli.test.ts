// `hermes-router check-config FILE` as users run it: a built CLI in a child
// process. Exit 0 on every shipped profile and on every config embedded in
// them; exit 1 with the file and the YAML path on mistakes.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_HEAD, PROFILES_DIR, PROFILE_FILES, valuesFile, valuesText } from './helpers.js';

const ROOT = join(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/hermes-router.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function checkConfig(file: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, 'check-config', file],
      { cwd: ROOT, timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hermes-check-config-'));
}, 300_000);

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const f = join(tmp, name);
  writeFileSync(f, text);
  return f;
}

describe('hermes-router check-config', () => {
  it.each(PROFILE_FILES)('exits 0 on examples/profiles/%s', async (f) => {
    const r = await checkConfig(join(PROFILES_DIR, f));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok /);
    expect(r.stdout).toContain(f);
  });

  it.each(PROFILE_FILES)('exits 0 on each config embedded in %s, given on its own', async (f) => {
    for (const [name, body] of valuesFile(join(PROFILES_DIR, f)).embedded) {
      const file = write(`${f}--${name}`, body);
      const r = await checkConfig(file);
      expect(r.stderr, name).toBe('');
      expect(r.code, name).toBe(0);
    }
  });

  const failures: Array<[string, string, string]> = [
    ['unknown plugin type', `${CONFIG_HEAD}plugins:\n- type: no-such-plugin\n`, 'plugins[0].type'],
    [
      'bad parameter type',
      `${CONFIG_HEAD}plugins:\n- type: scorer-pd-bucket\n  parameters:\n    alpha: "one"\n`,
      'plugins[0].parameters.alpha',
    ],
    [
      'dangling pluginRef',
      `${CONFIG_HEAD}plugins:\n- type: filter-by-pd-label\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: filter-by-pd-label\n  - pluginRef: scorer-pd-bucket\n`,
      'schedulingProfiles[0].plugins[1].pluginRef',
    ],
    [
      'values file whose pluginsConfigFile names no embedded config',
      valuesText('epp-a.yaml', `${CONFIG_HEAD}plugins:\n- type: picker-min-random`, 'epp-b.yaml'),
      'inferencepool.inferenceExtension.pluginsConfigFile',
    ],
    [
      'bad parameter inside a values file',
      valuesText(
        'epp-a.yaml',
        `${CONFIG_HEAD}plugins:\n- type: scorer-pd-bucket\n  parameters: {decayFactor: 2}`,
      ),
      'inferencepool.inferenceExtension.pluginsCustomConfig["epp-a.yaml"].plugins[0].parameters.decayFactor',
    ],
  ];

  it.each(failures)('exits 1 on a %s, naming the file and the YAML path', async (what, text, path) => {
    const file = write(`${what.replace(/\W+/g, '-')}.yaml`, text);
    const r = await checkConfig(file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain(path);
  });
});
