// requestSource (shared/http/caller.ts): which address a request is judged by, hop by hop. The
// runtime-level behaviour is in test/e2e/trust.test.ts; here the cases a runtime cannot easily make
// (remote peers, IPv6, Forwarded syntax, a function reached without a gateway).
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { forwardedFor, requestSource, type Source } from '../../shared/http/caller.js';

async function sourceOf(peer: string | undefined, headers: Record<string, string>, trusted = ''): Promise<Source> {
  const app = new Hono();
  let got: Source | undefined;
  app.get('/', (c) => {
    got = requestSource(c, trusted);
    return c.text('ok');
  });
  await app.request('/', { headers }, peer ? { incoming: { socket: { remoteAddress: peer } } } : {});
  return got!;
}

describe('requestSource', () => {
  it('takes the gateway’s X-Forwarded-For from a loopback peer', async () => {
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '10.1.2.3' })).toEqual({ address: '10.1.2.3' });
    expect(await sourceOf('::ffff:127.0.0.1', { 'x-forwarded-for': '::ffff:10.1.2.3' })).toEqual({ address: '10.1.2.3' });
  });

  it('reads X-Forwarded-For as OpenFaaS’s gateway writes it: ip:port, [IPv6]:port, after a client-sent value', async () => {
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '10.1.2.3:51234' })).toEqual({ address: '10.1.2.3' });
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '[2001:db8::7]:5000' })).toEqual({ address: '2001:db8::7' });
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '[::1]:5000' })).toEqual({ address: '::1' });
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '2001:db8::7' })).toEqual({ address: '2001:db8::7' });
    // A value the client sent stays in front; only the entry the gateway added counts.
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '127.0.0.1, 10.1.2.3:51234' })).toEqual({ address: '10.1.2.3' });
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '10.9.9.9:1, 192.0.2.4:443' })).toEqual({ address: '192.0.2.4' });
  });

  it('ignores every header from a remote peer that is not a trusted proxy', async () => {
    expect(await sourceOf('10.5.5.5', { 'x-forwarded-for': '127.0.0.1', 'x-cdc-relayed-for': '127.0.0.1' })).toEqual({ address: '10.5.5.5' });
  });

  it('judges a remote relaying hop as itself, a loopback one as no address', async () => {
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '10.5.5.5', 'x-cdc-relayed-for': '10.9.9.9' })).toEqual({ address: '10.5.5.5' });
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '127.0.0.1', 'x-cdc-relayed-for': '10.9.9.9' })).toEqual({
      address: null,
      untrustedRelay: '127.0.0.1',
    });
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '::1', 'x-cdc-relayed-for': '10.9.9.9' })).toEqual({ address: null, untrustedRelay: '::1' });
  });

  it('hands over to the hop before a trusted proxy', async () => {
    const trusted = '127.0.0.1/32,10.0.0.0/24';
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '127.0.0.1', 'x-cdc-relayed-for': '192.0.2.7, 10.0.0.4' }, trusted)).toEqual({
      address: '192.0.2.7',
    });
    // Every hop trusted: the farthest is the client.
    expect(await sourceOf('127.0.0.1', { 'x-forwarded-for': '127.0.0.1', 'x-cdc-relayed-for': '10.0.0.9' }, trusted)).toEqual({ address: '10.0.0.9' });
    // A claim that is not an address: no address, named as the relay.
    expect((await sourceOf('127.0.0.1', { 'x-forwarded-for': '127.0.0.1', 'x-cdc-relayed-for': 'unknown' }, trusted)).address).toBeNull();
  });

  it('treats a function reached without a gateway by its peer, and a relaying local peer as no address', async () => {
    expect(await sourceOf('127.0.0.1', {})).toEqual({ address: '127.0.0.1' });
    expect(await sourceOf('127.0.0.1', { forwarded: 'for=10.9.9.9' })).toEqual({ address: null, untrustedRelay: '127.0.0.1' });
    expect(await sourceOf('127.0.0.1', { 'x-real-ip': '10.9.9.9' })).toEqual({ address: null, untrustedRelay: '127.0.0.1' });
    expect(await sourceOf('127.0.0.1', { forwarded: 'for=10.9.9.9' }, '127.0.0.1/32')).toEqual({ address: '10.9.9.9' });
  });

  it('reads Forwarded for= values (RFC 7239)', () => {
    expect(forwardedFor('for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711", for="198.51.100.17:8080"')).toEqual([
      '192.0.2.60',
      '2001:db8:cafe::17',
      '198.51.100.17',
    ]);
    expect(forwardedFor(undefined)).toEqual([]);
  });
});
