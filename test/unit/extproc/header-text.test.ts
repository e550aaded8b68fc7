// headerText reads one header as headerRecord would give it, without the record.
import { describe, expect, test } from 'vitest';
import { headerRecord, headerText, type HeaderMap } from '../../../src/extproc/messages.js';

const maps: Array<HeaderMap | undefined> = [
  undefined,
  {},
  { headers: [] },
  {
    headers: [
      { key: ':status', raw_value: Buffer.from('200') },
      { key: 'Content-Type', raw_value: Buffer.from('text/event-stream') },
    ],
  },
  {
    headers: [
      { key: 'content-type', value: 'application/json' },
      { key: 'x-other', raw_value: Buffer.from('a') },
      { key: 'CONTENT-TYPE', raw_value: Buffer.from('text/plain') },
      { key: ':status', raw_value: Buffer.alloc(0), value: '404' },
      { key: 'content-type', raw_value: Buffer.alloc(0) },
    ],
  },
];

describe('headerText', () => {
  test('equals headerRecord(map)[name] for present, repeated, mixed-case and absent headers', () => {
    for (const m of maps) {
      const record = headerRecord(m);
      for (const name of [':status', 'content-type', 'x-other', 'absent'])
        expect(headerText(m, name)).toBe(record[name]);
    }
    expect(headerText(maps[4], 'content-type')).toBe('application/json, text/plain, ');
    expect(headerText(maps[4], ':status')).toBe('404');
    expect(headerText(maps[3], 'content-type')).toBe('text/event-stream');
  });
});
