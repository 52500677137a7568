/**
 * JSON as a HIS sends it, without losing a digit (docs/his-guide.md "Numbers"). JavaScript reads a
 * JSON number as a double: a Java `long` record id sent bare (a snowflake id, 18–19 digits) comes out
 * rounded, so two different records would get one id; `1e400` comes out as Infinity. A number the
 * double cannot hold as sent — digits it rounds away, out of range, or a non-zero value that
 * underflows to 0 — is kept as the text it was sent as: a text field (an id) stores those
 * digits, a numeric field reads them as it reads a number sent in quotes. Every other number is the
 * number JSON.parse makes.
 *
 * The exact parse (a reviver reading each number's source text) is slower than JSON.parse, so it
 * runs only on a body that may hold such a number: a value starting with sixteen digits (an ID
 * card number is text, in quotes, and does not count), or an exponent of three digits.
 */
const MAYBE_INEXACT = /[:[,]\s*-?[\d.]{16}|\d[eE][+-]?\d{3}/;

/** The significant digits of a number's text (`-0012.3400e5` → `1234`; `1.5e+21` → `15`). */
function digits(text: string): string {
  return text
    .replace(/^-/, '')
    .replace(/[eE].*$/, '')
    .replace('.', '')
    .replace(/^0+/, '')
    .replace(/0+$/, '');
}

function exact(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== 'number' || context?.source === undefined) return value;
  const source = context.source;
  if (!Number.isFinite(value)) return source;
  const sent = digits(source);
  // A non-zero number too small for a double reads as 0.
  if (value === 0 && sent !== '') return source;
  // Up to fifteen significant digits every double reads back as sent; beyond, only if its own
  // shortest text has the same digits (9007199254740991 does, 1234567890123456781 does not).
  return sent.length <= 15 || sent === digits(String(value)) ? value : source;
}

/** JSON.parse, with a number a double would change kept as its text. Throws SyntaxError as JSON.parse does. */
export function parseJsonExact(text: string): unknown {
  return MAYBE_INEXACT.test(text) ? JSON.parse(text, exact as (this: unknown, key: string, value: unknown) => unknown) : JSON.parse(text);
}
