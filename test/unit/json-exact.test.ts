// parseJsonExact (shared/http/json.ts): a JSON number a double would change is kept as the text it
// was sent as; every other value is JSON.parse's.
import { describe, expect, it } from 'vitest';
import { parseJsonExact } from '../../shared/http/json.js';

describe('parseJsonExact', () => {
  it('keeps a number a double cannot hold as its text', () => {
    expect(parseJsonExact('{"id":1234567890123456781,"big":1e400,"tiny":-1e-400,"long":0.12345678901234567}')).toEqual({
      id: '1234567890123456781',
      big: '1e400',
      tiny: '-1e-400',
      long: '0.12345678901234567',
    });
  });

  it('leaves every number a double holds a number, and text as text', () => {
    const text = '{"a":9007199254740991,"b":1.5,"c":-0,"d":0.0,"e":1e20,"f":123456789012345,"g":"1234567890123456789","h":[1,2e300,100000000000000000000]}';
    expect(parseJsonExact(text)).toEqual(JSON.parse(text));
    const parsed = parseJsonExact(text) as Record<string, unknown>;
    expect(typeof parsed.a).toBe('number');
    expect(parsed.g).toBe('1234567890123456789');
  });

  it('works inside arrays and nested objects, and throws on broken JSON as JSON.parse does', () => {
    expect(parseJsonExact('[{"ids":[1234567890123456781,2]}]')).toEqual([{ ids: ['1234567890123456781', 2] }]);
    expect(() => parseJsonExact('{"id":1234567890123456781,')).toThrow(SyntaxError);
  });
});

describe('parseJsonExact on the common path', () => {
  it('reads a record whose only long digit runs are text (an ID card number) as JSON.parse does', () => {
    const text = '{"idCard":"44010320010318298X","tel":"13740612812","invalidFlag":0,"items":[{"v":1.25}]}';
    expect(parseJsonExact(text)).toEqual(JSON.parse(text));
  });
  it('finds a long number after whitespace, in an array, and negative', () => {
    expect(parseJsonExact('{"a": \n 1234567890123456781}')).toEqual({ a: '1234567890123456781' });
    expect(parseJsonExact('[-1234567890123456781]')).toEqual(['-1234567890123456781']);
  });
});
