import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { buildSpan } from '../../src/export/span-builder';
import { WallClock } from '../../src/events/clock';
import { Flag, Role } from '../../src/events/layout';
import type { Exchange } from '../../src/trace/correlator';
import { madeExchange } from '../support/made-exchange';

// Monotonic 1_000 s == wall 1_700_000_000 s.
const clock = new WallClock({ eventNs: () => 1_000_000_000_000n, realtimeNs: () => 1_700_000_000_000_000_000n, wholeSecondOffset: false });
const resource = resourceFromAttributes({ 'service.name': 'svc' });

const exchange = (role: number, req: string, resp?: string, flags?: number): Exchange => madeExchange(role, req, resp, flags === undefined ? {} : { flags });

test('HTTP server span: name, kind, ids, parent, times, attributes, 5xx is an error', () => {
  const s = buildSpan(
    exchange(
      Role.GB_ROLE_SERVER,
      'GET /users/7?x=1 HTTP/1.1\r\nHost: api\r\n\r\n',
      'HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n',
      Flag.GB_F_SAMPLED | Flag.GB_F_HAS_PARENT | Flag.GB_F_REMOTE_PARENT,
    ),
    resource,
    clock,
  );
  assert.equal(s.name, 'GET');
  assert.equal(s.kind, SpanKind.SERVER);
  assert.deepEqual(s.spanContext(), {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: false,
  });
  assert.equal(s.parentSpanContext?.spanId, '1111111111111111');
  assert.equal(s.parentSpanContext?.isRemote, true);
  assert.deepEqual(s.startTime, [1_700_000_000, 500]);
  assert.deepEqual(s.endTime, [1_700_000_000, 3000]);
  assert.deepEqual(s.duration, [0, 2500]);
  assert.equal(s.attributes['http.request.method'], 'GET');
  assert.equal(s.attributes['url.path'], '/users/7');
  assert.equal(s.attributes['url.query'], 'x=1');
  assert.equal(s.attributes['http.response.status_code'], 500);
  assert.equal(s.attributes['server.port'], 8080);
  assert.equal(s.attributes['client.address'], '10.0.0.1');
  assert.equal(s.attributes['network.peer.port'], 41000);
  assert.equal(s.attributes['network.type'], undefined, 'ipv4 is the default');
  assert.equal(s.attributes['network.transport'], undefined, 'tcp is the default for HTTP');
  assert.equal(s.attributes['client.port'], undefined, 'opt-in');
  assert.equal(s.status.code, SpanStatusCode.ERROR);
});

test('HTTP client span: 404 is an error on the client side only; url.full from Host', () => {
  const c = buildSpan(
    exchange(Role.GB_ROLE_CLIENT, 'GET /missing HTTP/1.1\r\nHost: api:80\r\n\r\n', 'HTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n'),
    resource,
    clock,
  );
  assert.equal(c.kind, SpanKind.CLIENT);
  assert.equal(c.status.code, SpanStatusCode.ERROR);
  assert.equal(c.attributes['url.full'], 'http://api:80/missing');
  assert.equal(c.attributes['server.address'], '10.0.0.1');
  const s = buildSpan(exchange(Role.GB_ROLE_SERVER, 'GET /missing HTTP/1.1\r\n\r\n', 'HTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n'), resource, clock);
  assert.equal(s.status.code, SpanStatusCode.UNSET);
});

test('Redis span: operation name and db.system.name; error replies set ERROR', () => {
  const s = buildSpan(exchange(Role.GB_ROLE_CLIENT, '*2\r\n$3\r\nGET\r\n$1\r\nk\r\n', '-WRONGTYPE Operation against a key\r\n'), resource, clock);
  assert.equal(s.name, 'GET');
  assert.equal(s.attributes['db.system.name'], 'redis');
  assert.equal(s.attributes['db.operation.name'], 'GET');
  assert.equal(s.status.code, SpanStatusCode.ERROR);
  assert.equal(s.attributes['error.type'], 'WRONGTYPE');
});

test('unknown protocol gives a generic TCP span; no response is an error; root has no parent', () => {
  const ex = exchange(Role.GB_ROLE_CLIENT, '\x00\x01\x02', undefined, Flag.GB_F_SAMPLED);
  ex.parentSpanId = '';
  ex.endReason = 'close';
  const s = buildSpan(ex, resource, clock);
  assert.equal(s.name, 'tcp 41000');
  assert.equal(s.parentSpanContext, undefined);
  assert.equal(s.status.code, SpanStatusCode.ERROR);
  assert.match(s.status.message ?? '', /no response/);
});
