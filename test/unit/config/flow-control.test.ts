import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { flowControlSettingsOf, parseGoDurationMs, parseQuantity } from '../../../src/config/flow-control.js';
import { builtinRegistry } from '../../../src/plugins/index.js';

const at = (p: ReadonlyArray<PropertyKey>) => p.map(String).join('.');

const config = (flowControl: string) => `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: picker-min-random
${flowControl}
`;

describe('flowControl section', () => {
  it('absent: no queueing', () => {
    expect(flowControlSettingsOf(undefined, 'f.yaml', at)).toBeUndefined();
    const loaded = loadConfigText(config(''), 'f.yaml', builtinRegistry());
    expect(loaded.flowControl).toBeUndefined();
  });

  it('present but empty: GIE band defaults, unlimited totals, the 4 s TTL', () => {
    const s = flowControlSettingsOf({}, 'f.yaml', at)!;
    expect(s).toMatchObject({ maxRequests: 0, maxBytes: 0, requestTtlMs: 4000 });
    expect(s.defaultBand).toEqual({ maxRequests: 5000, maxBytes: 1_000_000_000 });
    expect(s.bands.size).toBe(0);
  });

  it('reads GIE v1.5 fields: quantities, a Go duration, bands over the default band', () => {
    const loaded = loadConfigText(
      config(`flowControl:
  maxRequests: 1k
  maxBytes: 1Gi
  defaultRequestTTL: 1m30s
  defaultPriorityBand: { maxRequests: 50, orderingPolicyRef: fcfs-ordering-policy }
  priorityBands:
  - { priority: 10, maxBytes: 500M, fairnessPolicyRef: global-strict-fairness-policy }
  - { priority: -1, maxRequests: 0 }
  usageLimitPolicyPluginRef: static-usage-limit-policy`),
      'f.yaml',
      builtinRegistry(),
    );
    const s = loaded.flowControl!;
    expect(s.maxRequests).toBe(1000);
    expect(s.maxBytes).toBe(1024 ** 3);
    expect(s.requestTtlMs).toBe(90_000);
    expect(s.defaultBand).toEqual({ maxRequests: 50, maxBytes: 1e9 });
    // A band inherits what it does not set from the default band; 0 means "default" (GIE).
    expect(s.bands.get(10)).toEqual({ maxRequests: 50, maxBytes: 5e8 });
    expect(s.bands.get(-1)).toEqual({ maxRequests: 50, maxBytes: 1e9 });
  });

  it.each([
    ['  maxRequests: -3', 'f.yaml: flowControl.maxRequests: expected a request count'],
    ['  maxBytes: lots', 'f.yaml: flowControl.maxBytes: expected a byte size'],
    ['  defaultRequestTTL: soon', 'f.yaml: flowControl.defaultRequestTTL: expected a duration'],
    ['  maxRequest: 5', 'f.yaml: flowControl.maxRequest: unknown field "maxRequest"'],
    [
      '  priorityBands: [{ maxRequests: 5 }]',
      'f.yaml: flowControl.priorityBands[0].priority: expected an integer',
    ],
    [
      '  priorityBands: [{ priority: 1.5 }]',
      'f.yaml: flowControl.priorityBands[0].priority: expected an integer',
    ],
    [
      '  priorityBands: [{ priority: 1 }, { priority: 1 }]',
      'f.yaml: flowControl.priorityBands[1].priority: a priority no other band has, 1 is configured twice',
    ],
    [
      '  priorityBands: [{ priority: 1, orderingPolicyRef: edf-ordering-policy }]',
      'f.yaml: flowControl.priorityBands[0].orderingPolicyRef: expected fcfs-ordering-policy',
    ],
    ['  usageLimitPolicyPluginRef: mine', 'f.yaml: flowControl.usageLimitPolicyPluginRef: expected static'],
  ])('%s -> a located error', (body, message) => {
    expect(() => loadConfigText(config(`flowControl:\n${body}`), 'f.yaml', builtinRegistry())).toThrow(
      message,
    );
  });

  it('parses Kubernetes quantities and Go durations', () => {
    expect(parseQuantity('1k')).toBe(1000);
    expect(parseQuantity('2Mi')).toBe(2 * 1024 ** 2);
    expect(parseQuantity('1e3')).toBe(1000);
    expect(parseQuantity(7)).toBe(7);
    expect(parseQuantity(-1)).toBeUndefined();
    expect(parseQuantity('1.5')).toBe(2);
    expect(parseQuantity('1KB')).toBeUndefined();
    expect(parseGoDurationMs('1h2m3s')).toBe(3_723_000);
    expect(parseGoDurationMs('250ms')).toBe(250);
    expect(parseGoDurationMs('0')).toBe(0);
    expect(parseGoDurationMs('10')).toBeUndefined();
  });
});
