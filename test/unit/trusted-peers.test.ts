import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv6Bytes, parseTrustPeers, TrustPeersError } from '../../src/bpf/trusted-peers';

test('--trust-peers: IPv4 networks become v4-mapped prefixes (+96), IPv6 stays, single addresses are /32 or /128', () => {
  const [a, b, c, d] = parseTrustPeers('10.1.0.0/16, fd00::/8,192.0.2.7,::ffff:198.51.100.0/120');
  assert.equal(a.prefixlen, 112);
  assert.equal(a.addr.toString('hex'), '00000000000000000000ffff0a010000');
  assert.equal(b.prefixlen, 8);
  assert.equal(b.addr.toString('hex'), 'fd000000000000000000000000000000');
  assert.equal(c.prefixlen, 128);
  assert.equal(c.addr.toString('hex'), '00000000000000000000ffffc0000207');
  assert.equal(d.prefixlen, 120);
  assert.equal(d.addr.toString('hex'), '00000000000000000000ffffc6336400');
  assert.equal(ipv6Bytes('2001:db8::1').toString('hex'), '20010db8000000000000000000000001');
});

test('--trust-peers: bad input is refused clearly', () => {
  assert.throws(() => parseTrustPeers('10.0.0.0/33'), /prefix length outside 0..32/);
  assert.throws(() => parseTrustPeers('example.com'), /not an address or CIDR/);
  assert.throws(() => parseTrustPeers('10.0.0.0/x'), TrustPeersError);
  assert.throws(() => parseTrustPeers(' , '), /at least one/);
});
