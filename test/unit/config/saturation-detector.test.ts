import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import { view } from '../plugins/fixtures.js';
import { CONFIG_HEAD } from './helpers.js';

const load = (body: string) => loadConfigText(CONFIG_HEAD + body, 'epp.yaml', builtinRegistry());
const PROFILE = `schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
`;

describe('saturationDetector section', () => {
  it('defaults to a utilization-detector with GIE defaults', () => {
    const c = load(`plugins:\n- type: random-picker\n${PROFILE}`);
    expect(c.saturationDetector.type).toBe('utilization-detector');
    // max(5/5, 0) = 1: a queue of 5 is GIE's threshold.
    expect(c.saturationDetector.saturation([view('a', { waiting: 5 })])).toBe(1);
    expect(c.saturationDetector.saturation([view('a', { usage: 0.4 })])).toBe(0.5);
  });

  it('v1.5: pluginRef names a detector listed under plugins', () => {
    const c = load(
      `plugins:\n- type: random-picker\n- type: concurrency-detector\n  name: conc\n  parameters: {maxConcurrency: 2}\n${PROFILE}saturationDetector:\n  pluginRef: conc\n`,
    );
    expect(c.saturationDetector.name).toBe('conc');
    expect(c.saturationDetector.saturation([view('a', { inFlight: 1 })])).toBe(0.5);
  });

  it('v1.5: a concurrency-detector in tokens mode', () => {
    const c = load(
      `plugins:\n- type: random-picker\n- type: concurrency-detector\n  name: conc\n  parameters: {concurrencyMode: tokens, maxTokenConcurrency: 4000}\n${PROFILE}saturationDetector:\n  pluginRef: conc\n`,
    );
    // 1000 / 4000
    expect(c.saturationDetector.saturation([view('a', { pendingPrefillTokens: 1000, inFlight: 9 })])).toBe(
      0.25,
    );
  });

  it('concurrency-detector parameter errors name the YAML path', () => {
    const plugin = (params: string) =>
      `plugins:\n- type: random-picker\n- type: concurrency-detector\n  parameters: ${params}\n${PROFILE}`;
    expect(() => load(plugin('{concurrencyMode: hybrid}'))).toThrow(
      'epp.yaml: plugins[1].parameters.concurrencyMode: expected concurrencyMode "requests" or "tokens"',
    );
    expect(() => load(plugin('{maxTokenConcurrency: -5}'))).toThrow(
      'epp.yaml: plugins[1].parameters.maxTokenConcurrency: expected maxTokenConcurrency > 0',
    );
  });

  it('v1.2: the flat thresholds block', () => {
    const c = load(
      `plugins:\n- type: random-picker\n${PROFILE}saturationDetector:\n  queueDepthThreshold: 10\n  kvCacheUtilThreshold: 0.5\n  metricsStalenessThreshold: 150ms\n`,
    );
    expect(c.saturationDetector.saturation([view('a', { waiting: 2, usage: 0.4 })])).toBe(0.8);
  });

  it('located errors', () => {
    const base = `plugins:\n- type: random-picker\n${PROFILE}`;
    expect(() => load(`${base}saturationDetector:\n  pluginRef: nope\n`)).toThrow(
      'epp.yaml: saturationDetector.pluginRef: the name of a plugin listed under plugins, "nope" is not one',
    );
    expect(() => load(`${base}saturationDetector:\n  pluginRef: random-picker\n`)).toThrow(
      /saturationDetector\.pluginRef: a saturation detector .* "random-picker" is a random-picker/,
    );
    expect(() => load(`${base}saturationDetector:\n  queueDepthThreshold: 0\n`)).toThrow(
      'epp.yaml: saturationDetector.queueDepthThreshold: expected a queue depth > 0',
    );
    expect(() => load(`${base}saturationDetector:\n  bogus: 1\n`)).toThrow(/^epp\.yaml: saturationDetector/);
  });
});
