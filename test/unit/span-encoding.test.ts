/**
 * encodeSpan writes a span straight from its exchange; it must be byte for
 * byte the field the encoder writes for the ReadableSpan buildSpan makes of
 * the same exchange (and that one is the library's: otlp-trace-encoder.test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { buildSpan, encodeSpan, spanParts } from '../../src/export/span-builder';
import { OtlpTraceEncoder } from '../../src/otlp/trace-encoder';
import { WallClock } from '../../src/events/clock';
import { Flag, Role } from '../../src/events/layout';
import type { Exchange } from '../../src/trace/correlator';
import { recordedExchanges } from '../support/recorded-spans';
import { madeExchange } from '../support/made-exchange';

const clock = new WallClock({ eventNs: () => 1_000_000_000_000n, realtimeNs: () => 1_700_000_000_123_456_789n, wholeSecondOffset: false });
const resource = resourceFromAttributes({ 'service.name': 'svc' });

/** Every span of `ex` both ways; returns how many were compared. */
function assertSameBytes(ex: Exchange, what: string): number {
  const direct = new OtlpTraceEncoder();
  const viaSpan = new OtlpTraceEncoder();
  const parts = spanParts(ex);
  for (const [k, part] of parts.entries()) {
    const a = Buffer.from(encodeSpan(part, clock, direct));
    const b = Buffer.from(viaSpan.spanField(buildSpan(part.ex, resource, clock, part.extras)));
    assert.ok(a.equals(b), `${what}, span ${k}: ${a.toString('hex')} != ${b.toString('hex')}`);
  }
  return parts.length;
}

const exchange = madeExchange;

test('recorded exchanges (HTTP clients and servers, Redis clients): the bytes of the ReadableSpan path', () => {
  const exchanges = recordedExchanges();
  let spans = 0;
  for (const [i, ex] of exchanges.entries()) spans += assertSameBytes(ex, `recorded exchange ${i}`);
  console.log(`${spans} spans of ${exchanges.length} recorded exchanges compared`);
  assert.ok(spans >= 100, `only ${spans} spans compared`);
});

test('errors, missing responses, IPv6, remote parents, lost events, pipelined requests with links: the same bytes', () => {
  const get = (p: string) => `GET ${p} HTTP/1.1\r\nHost: api\r\nUser-Agent: curl/8\r\n\r\n`;
  const ok = (b: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n${b}`;
  const cases: [string, Exchange][] = [
    [
      'HTTP 500, remote parent',
      exchange(Role.GB_ROLE_SERVER, get('/a?x=1'), 'HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n', {
        flags: Flag.GB_F_SAMPLED | Flag.GB_F_HAS_PARENT | Flag.GB_F_REMOTE_PARENT,
      }),
    ],
    [
      'HTTP client 404, root',
      exchange(Role.GB_ROLE_CLIENT, 'GET /missing HTTP/1.1\r\n\r\n', 'HTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n', {
        parentSpanId: '',
        flags: Flag.GB_F_SAMPLED,
      }),
    ],
    ['no response, idle', exchange(Role.GB_ROLE_CLIENT, get('/slow'), undefined, { endReason: 'idle' })],
    ['Redis error', exchange(Role.GB_ROLE_CLIENT, '*2\r\n$3\r\nGET\r\n$1\r\nk\r\n', '-WRONGTYPE Operation against a key\r\n')],
    ['Redis without a response', exchange(Role.GB_ROLE_CLIENT, '*1\r\n$4\r\nPING\r\n', undefined)],
    [
      'IPv6, unknown end, incomplete, lost events',
      exchange(Role.GB_ROLE_SERVER, 'hello', 'world', {
        tuple: { localAddr: '::1', localPort: 7000, remoteAddr: 'fe80::1', remotePort: 50000 },
        endReason: undefined,
        incomplete: 'first event lost',
        lostEvents: 3,
      }),
    ],
    ['unsampled, non-ASCII target', exchange(Role.GB_ROLE_SERVER, 'GET /caf\u00e9 HTTP/1.1\r\n\r\n', ok('x'), { flags: 0 })],
    ['a server request that arrived pipelined', exchange(Role.GB_ROLE_SERVER, get('/two'), ok('22'), { pipelineIndex: 2 })],
    ['plain TCP', exchange(Role.GB_ROLE_SERVER, '\x00\x01binary', '\x02reply')],
    ['a client exchange of three pipelined requests (links)', exchange(Role.GB_ROLE_CLIENT, get('/1') + get('/2') + get('/3'), ok('1') + ok('22') + ok('333'))],
  ];
  let spans = 0;
  for (const [what, ex] of cases) spans += assertSameBytes(ex, what);
  assert.equal(spans, cases.length + 2, 'the pipelined client exchange is three spans');
});
