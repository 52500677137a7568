/** Source-address checks (CIDR lists) for HIS callers that send no credentials. */
import { isIP } from 'node:net';

function v4ToInt(a: string): number {
  return a.split('.').reduce((n, p) => (n << 8) + Number(p), 0) >>> 0;
}

function v6ToBigInt(a: string): bigint {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  // An embedded IPv4 tail (::ffff:10.0.0.1).
  const last = (t.length ? t : h).at(-1);
  const fix = (arr: string[]) => {
    if (arr.length && arr.at(-1)!.includes('.')) {
      const n = v4ToInt(arr.pop()!);
      arr.push(((n >>> 16) & 0xffff).toString(16), (n & 0xffff).toString(16));
    }
  };
  if (last?.includes('.')) fix(t.length ? t : h);
  const fill = tail !== undefined ? Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].reduce((n, p) => (n << 16n) + BigInt(parseInt(p || '0', 16)), 0n);
}

/** Normalises "::ffff:127.0.0.1" to "127.0.0.1". */
export function normalizeAddress(a: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a.trim());
  return m ? m[1]! : a.trim();
}

export function inCidr(address: string, cidr: string): boolean {
  const addr = normalizeAddress(address);
  const [net, bitsS] = cidr.trim().split('/');
  if (!net) return false;
  const fam = isIP(addr);
  if (fam !== isIP(net)) return false;
  if (fam === 4) {
    const bits = bitsS === undefined ? 32 : Number(bitsS);
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return (v4ToInt(addr) & mask) === (v4ToInt(net) & mask);
  }
  if (fam === 6) {
    const bits = BigInt(bitsS === undefined ? 128 : Number(bitsS));
    const mask = bits === 0n ? 0n : ((1n << 128n) - 1n) ^ ((1n << (128n - bits)) - 1n);
    return (v6ToBigInt(addr) & mask) === (v6ToBigInt(net) & mask);
  }
  return false;
}

export function inAnyCidr(address: string, list: string): boolean {
  return list
    .split(/[,\s]+/)
    .filter(Boolean)
    .some((c) => inCidr(address, c));
}

export const isLoopback = (a: string) => inAnyCidr(a, '127.0.0.0/8,::1/128');
