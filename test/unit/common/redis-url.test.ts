import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRedisUrl, redactUrl, RedisUrlError } from '../../../src/common/redis-connection.js';

// Passwords drawn from letters no message or host here contains, plus every
// character that has a meaning in a URL: any of them showing up in an error
// or a redacted URL is a leak.
const SECRET_CHARS = ['Q', 'Z', 'J', '/', '@', ':', '?', '#', '%', ' ', 'é'];
const secret = fc
  .array(fc.constantFrom(...SECRET_CHARS), { minLength: 1, maxLength: 24 })
  .map((a) => `Q${a.join('')}`);
const marker = /[QZJ]/;

const urls = (pw: string) => [
  `redis://:${pw}@redis.local:6379`,
  `redis://app:${pw}@redis.local:6379/2`,
  // Without a ":" the whole user info is the password (redis-cli's form).
  `rediss://${pw.replaceAll(':', '')}@redis.local:6380`,
  `redis+sentinel://:${pw}@s1:26379,s2:26379/mymaster`,
  `redis+cluster://:${pw}@n1:7000,n2:7001`,
];

describe('Redis URL secrets', () => {
  it('round-trips any percent-encoded password exactly', () => {
    fc.assert(
      fc.property(secret, (pw) => {
        for (const url of urls(encodeURIComponent(pw))) expect(parseRedisUrl(url).password).toBe(pw);
      }),
    );
  });

  it('never prints an unencoded password: it parses to exactly that password or fails naming the character', () => {
    fc.assert(
      fc.property(secret, (pw) => {
        for (const url of urls(pw)) {
          expect(redactUrl(url)).not.toMatch(marker);
          let parsed;
          try {
            parsed = parseRedisUrl(url);
          } catch (e) {
            expect(e).toBeInstanceOf(RedisUrlError);
            expect((e as Error).message).not.toMatch(marker);
            expect((e as Error).message).toMatch(/percent-encode|encode "%"/);
            continue;
          }
          // Accepted only when nothing in it needed encoding: then it is the password.
          expect([pw, pw.replaceAll(':', '')]).toContain(parsed.password);
          expect(parsed.hosts.map((h) => h.host).join(',')).not.toMatch(marker);
        }
      }),
    );
  });

  it('gives a clear error for an unencoded "/" and "@"', () => {
    expect(() => parseRedisUrl('redis://:Qa/b@h:6379')).toThrow(
      'the password in the Redis URL holds an unencoded "/": percent-encode it as %2F, or give the password in REDIS_PASSWORD',
    );
    expect(() => parseRedisUrl('redis://:Qa@b@h:6379')).toThrow(/unencoded "@": percent-encode it as %40/);
    expect(() => parseRedisUrl('redis://:Q%zz@h:6379')).toThrow(/not a %XX escape/);
  });

  it('takes the host after the last "@", so a password never becomes a host name', () => {
    expect(() => parseRedisUrl('redis://:p@ss@h:6379')).toThrow(RedisUrlError);
    expect(parseRedisUrl('redis://:p%40ss@h:6379')).toMatchObject({
      password: 'p@ss',
      hosts: [{ host: 'h' }],
    });
    expect(redactUrl('redis://:Qp@ss@h:6379')).toBe('redis://:***@h:6379');
    expect(redactUrl('redis://Qp/ss@h:6379')).toBe('redis://***@h:6379');
    expect(redactUrl('redis://app:Qp/ss@h:6379/0')).toBe('redis://app:***@h:6379/0');
    expect(redactUrl('redis://h:6379')).toBe('redis://h:6379');
  });
});
