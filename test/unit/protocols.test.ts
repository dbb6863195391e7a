import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countPipelinedRequests, httpResponseLength, parseHttpRequest, parseHttpResponse, splitPipelinedRequests } from '../../src/protocols/http1';
import { parseRedisCommand, parseRedisReply } from '../../src/protocols/redis';
import { expectedResponseBytes, identify } from '../../src/protocols';

const b = (s: string) => Buffer.from(s, 'latin1');

test('HTTP/1 request heads: method, path, query, host; cut heads still parse the line', () => {
  const r = parseHttpRequest(b('POST /api/v1/items?id=3 HTTP/1.1\r\nHost: shop:8080\r\nContent-Length: 12\r\nUser-Agent: curl/8\r\n\r\n{"a":1}'));
  assert.deepEqual(
    { m: r?.method, p: r?.path, q: r?.query, h: r?.host, cl: r?.contentLength, ua: r?.userAgent, v: r?.version },
    { m: 'POST', p: '/api/v1/items', q: 'id=3', h: 'shop:8080', cl: 12, ua: 'curl/8', v: '1.1' },
  );
  const cut = parseHttpRequest(b('GET /only-the-line HTTP/1.1\r\nHost: x\r\nAcc'));
  assert.equal(cut?.path, '/only-the-line');
  assert.equal(cut?.headLength, undefined);
  assert.equal(parseHttpRequest(b('GETX / HTTP/1.1\r\n\r\n')), null);
  assert.equal(parseHttpRequest(b('\x16\x03\x01\x02\x00')), null, 'TLS is not HTTP');
  assert.equal(parseHttpRequest(b('GET http://proxy.example/x/y?z HTTP/1.1\r\n\r\n'))?.path, '/x/y');
});

test('HTTP/1 responses: status, completion by Content-Length, bodyless statuses, chunked', () => {
  const head = 'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\n';
  const r = parseHttpResponse(b(head + 'oops!'));
  assert.equal(r?.status, 503);
  assert.equal(httpResponseLength(r!), head.length + 5);
  assert.equal(httpResponseLength(r!, 'HEAD'), head.length, 'a HEAD response has no body');
  const nc = parseHttpResponse(b('HTTP/1.1 204 No Content\r\n\r\n'));
  assert.equal(httpResponseLength(nc!), 27);
  const ch = parseHttpResponse(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'));
  assert.equal(ch?.chunked, true);
  assert.equal(httpResponseLength(ch!), undefined);
  assert.equal(parseHttpResponse(b('HTTP/1.0 200 OK\r\n\r\n'))?.close, true);
  assert.equal(parseHttpResponse(b('HTTX/1.1 200 OK\r\n\r\n')), null);
});

test('HTTP/1 header fields read from the bytes: whitespace, case, repeats and malformed values as String.trim() and the old string parse gave', () => {
  const resp = (fields: string) => parseHttpResponse(b(`HTTP/1.1 200 OK\r\n${fields}\r\n`));
  assert.equal(resp('Content-Length: \t 42 \xa0\r\n')?.contentLength, 42, 'tabs, spaces and NBSP around the digits');
  assert.equal(resp('content-LENGTH:7\r\n')?.contentLength, 7);
  assert.equal(resp('Content-Length: 5\r\nContent-Length: 9\r\n')?.contentLength, 9, 'the last of a repeated field');
  assert.equal(resp('Content-Length: 5\r\nContent-Length: x\r\n')?.contentLength, undefined, 'a malformed last one wins too');
  for (const bad of ['', ' ', '12a', '-1', '+5', '1e3', '0x10', '1 2', '1234567890123456']) {
    assert.equal(resp(`Content-Length: ${bad}\r\n`)?.contentLength, undefined, JSON.stringify(bad));
  }
  assert.equal(resp('Content-Length: 123456789012345\r\n')?.contentLength, 123456789012345, '15 digits');
  assert.equal(resp('Transfer-Encoding: gzip, CHUNKED\r\n')?.chunked, true);
  assert.equal(resp('Transfer-Encoding: chunk\r\n')?.chunked, false);
  assert.equal(resp('Connection: Upgrade, CLOSE\r\n')?.close, true);
  assert.equal(parseHttpResponse(b('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n'))?.close, false, 'HTTP/1.0 kept alive');
  assert.equal(parseHttpResponse(b('HTTP/1.0 200 OK\r\nConnection: te\r\n\r\n'))?.close, true);
  const req = parseHttpRequest(b('GET / HTTP/1.1\r\nHost:  \tshop:8080 \r\nUser-Agent:\xa0wrk\xa0\r\n\r\n'));
  assert.deepEqual([req?.host, req?.userAgent], ['shop:8080', 'wrk']);
});

test("HTTP/1 pipelining: requests counted by the kernel's rule (a method right after each head's blank line)", () => {
  assert.equal(countPipelinedRequests(b('GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n')), 2);
  assert.equal(countPipelinedRequests(b('GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nDELETE /c HTTP/1.1\r\n\r\n')), 3);
  // The second is cut, but it has begun: the server's kernel numbers it too.
  assert.equal(countPipelinedRequests(b('GET /a HTTP/1.1\r\n\r\nGET /b HT')), 2);
  // Bodies are not skipped: a request behind one with a body is not split off (the kernel does not read Content-Length).
  assert.equal(countPipelinedRequests(b('POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n')), 1);
  // The first blank line followed by something else ends the count, even if a method comes later.
  assert.equal(countPipelinedRequests(b('POST /a HTTP/1.1\r\nContent-Length: 9\r\n\r\nx\r\n\r\nGET /b HTTP/1.1\r\n\r\n')), 1);
  assert.deepEqual(
    splitPipelinedRequests(b('GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n')).map((x) => x.toString('latin1')),
    ['GET /a HTTP/1.1\r\n\r\n', 'GET /b HTTP/1.1\r\n\r\n'],
  );
});

test('Redis RESP: commands, inline commands, replies, errors, completeness', () => {
  assert.deepEqual(parseRedisCommand(b('*2\r\n$4\r\nINCR\r\n$3\r\nkey\r\n')), { name: 'INCR', args: 1 });
  assert.deepEqual(parseRedisCommand(b('*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n')), { name: 'SET', args: 2 });
  assert.deepEqual(parseRedisCommand(b('PING\r\n')), { name: 'PING', args: 0 });
  assert.equal(parseRedisCommand(b('*1\r\n$99999\r\nx')), null);
  assert.equal(parseRedisCommand(b('HELLO WORLD THIS IS TEXT\r\n')), null);
  assert.deepEqual(parseRedisReply(b(':42\r\n')), { length: 5 });
  assert.deepEqual(parseRedisReply(b('$5\r\nhello\r\n')), { length: 11 });
  assert.deepEqual(parseRedisReply(b('*2\r\n$1\r\na\r\n:1\r\n')), { length: 15 });
  assert.deepEqual(parseRedisReply(b('$10\r\nhel')), {}, 'incomplete: no length');
  assert.equal(parseRedisReply(b('-ERR unknown command\r\n'))?.error, 'ERR unknown command');
  assert.equal(parseRedisReply(b('HTTP/1.1 200 OK\r\n')), null);
});

test('Redis commands are read from the bytes: names of any case and . - _ |, counts as RESP writes them, cut and odd forms refused', () => {
  assert.deepEqual(parseRedisCommand(b('*4\r\n$12\r\nclient|Setna\r\n')), { name: 'CLIENT|SETNA', args: 3 }, 'the name may be all the head holds');
  assert.deepEqual(parseRedisCommand(b('*1\r\n$9\r\nFT.SEARCH\r\n')), { name: 'FT.SEARCH', args: 0 });
  assert.deepEqual(parseRedisCommand(b('*1000000\r\n$3\r\nDEL')), { name: 'DEL', args: 999_999 }, 'no CR LF needed after a name that ends the head');
  let counted = 0;
  for (const bad of [
    '*0\r\n$3\r\nGET\r\n', // no arguments at all
    '*1000001\r\n$3\r\nGET\r\n', // too many
    '*+2\r\n$3\r\nGET\r\n', // RESP counts are digits only (Number() took '+2', ' 2', '0x2', '2.0')
    '* 2\r\n$3\r\nGET\r\n',
    '*2.0\r\n$3\r\nGET\r\n',
    '*2\n$3\r\nGET\r\n', // LF without CR
    '*2\r\n+3\r\nGET\r\n', // not a bulk string
    '*2\r\n$0\r\n\r\n', // empty name
    '*2\r\n$65\r\n' + 'A'.repeat(65), // too long
    '*2\r\n$5\r\nGET\r\n', // cut: fewer bytes than announced
    '*2\r\n$3\r\n.ET\r\n', // not a letter first
    '*2\r\n$3\r\nG\xc9T\r\n', // not ASCII
    '*2\r\n$3\r\nG T\r\n',
    '*99999999999999999999\r\n$3\r\nGET\r\n', // more digits than a count has
    '\x00\x01\x02\x03', // binary
  ]) {
    assert.equal(parseRedisCommand(b(bad)), null, JSON.stringify(bad));
    counted++;
  }
  console.log(`${counted} malformed RESP commands refused`);
});

test('identify and expectedResponseBytes pick the protocol from the request head', () => {
  assert.equal(identify(b('GET / HTTP/1.1\r\n\r\n')).protocol?.name, 'http');
  assert.equal(identify(b('*1\r\n$4\r\nPING\r\n')).protocol?.name, 'redis');
  assert.equal(identify(b('\x00\x01binary')).protocol, undefined);
  assert.equal(identify(undefined).protocol, undefined);
  assert.equal(expectedResponseBytes(identify(b('*1\r\n$4\r\nPING\r\n'), b('+PONG\r\n'))), 7);
  assert.equal(expectedResponseBytes(identify(b('x'), b('y'))), undefined);
});
