// The parse section of `npm run bench -- hostile`: how long one call of each
// parser takes on inputs built to be slow (the fuzz suites' hostile cases)
// and the worst call over a fixed-seed sample of random inputs. The fuzz
// tests assert only the outcome (a value or the parser's own error); the
// time is a figure here, so a loaded CI machine cannot fail a test on it.
import fc from 'fast-check';
import yaml from 'js-yaml';
import { loadConfigText } from '../../src/config/endpoint-picker-config.js';
import { parseEndpointsFile } from '../../src/discovery/endpoints-file.js';
import { decodeBatch } from '../../src/kvcache/events.js';
import { builtinRegistry } from '../../src/plugins/index.js';
import { parseOpenAIRequest } from '../../src/request/openai.js';
import { adversarialYaml, hostileMsgpack, hostileOpenAIBodies, yamlDoc } from '../fuzz/arbitraries.js';

export interface ParseFigure {
  parser: string;
  input: string;
  inputBytes: number;
  ms: number;
}

function timed(parser: string, input: string, inputBytes: number, call: () => unknown): ParseFigure {
  const t0 = performance.now();
  try {
    call();
  } catch {
    // Only the time counts here; the fuzz tests check that this is the parser's own error.
  }
  return { parser, input, inputBytes, ms: Math.round((performance.now() - t0) * 100) / 100 };
}

/** Worst single call over `n` random inputs (seeded, so every run times the same inputs). */
function worstOf<T>(parser: string, arb: fc.Arbitrary<T>, n: number, call: (v: T) => unknown): ParseFigure {
  let worst: ParseFigure = { parser, input: `worst of ${n} random`, inputBytes: 0, ms: 0 };
  for (const v of fc.sample(arb, { numRuns: n, seed: 17 })) {
    const f = timed(parser, `worst of ${n} random`, JSON.stringify(v)?.length ?? 0, () => call(v));
    if (f.ms > worst.ms) worst = f;
  }
  return worst;
}

export function parseWorstCases(): ParseFigure[] {
  const registry = builtinRegistry();
  const out: ParseFigure[] = [];
  for (const [name, path, body] of hostileOpenAIBodies())
    out.push(timed('parseOpenAIRequest', name, body.length, () => parseOpenAIRequest(path, body, {}, 'r')));
  for (const [name, text] of adversarialYaml())
    out.push(timed('loadConfigText', name, text.length, () => loadConfigText(text, 'x.yaml', registry)));
  for (const [name, text] of adversarialYaml('endpoints'))
    out.push(timed('parseEndpointsFile', name, text.length, () => parseEndpointsFile(text, 'x.yaml')));
  for (const [name, bytes] of hostileMsgpack())
    out.push(timed('decodeBatch (KV events)', name, bytes.length, () => decodeBatch(bytes)));
  const doc = yamlDoc().map((d) => yaml.dump(d, { skipInvalid: true }));
  out.push(worstOf('loadConfigText', doc, 2_000, (t) => loadConfigText(t, 'x.yaml', registry)));
  out.push(
    worstOf('parseOpenAIRequest', fc.jsonValue(), 2_000, (v) => {
      parseOpenAIRequest('/v1/completions', JSON.stringify(v) ?? 'null', {}, 'r');
    }),
  );
  out.push(
    worstOf('decodeBatch (KV events)', fc.uint8Array({ maxLength: 512 }), 5_000, (b) => decodeBatch(b)),
  );
  return out;
}

export function parseTable(rows: ParseFigure[]): string {
  const lines = ['| parser | input | bytes | ms |', '| --- | --- | ---: | ---: |'];
  for (const r of rows) lines.push(`| ${r.parser} | ${r.input} | ${r.inputBytes} | ${r.ms} |`);
  return lines.join('\n');
}
