/**
 * `--trust-peers CIDR,…`: the networks whose TCP options may set the parent
 * of this host's spans. Parsed into LPM-trie keys (struct gb_peer_prefix):
 * IPv4 as v4-mapped IPv6 with the prefix length + 96.
 */
import net from 'node:net';

export interface PeerPrefix {
  prefixlen: number;
  addr: Buffer; // 16 bytes
  text: string;
}

export class TrustPeersError extends Error {}

function ipv4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** 16 bytes of an IPv6 address (with an optional dotted IPv4 tail). */
export function ipv6Bytes(ip: string): Buffer {
  let text = ip;
  const tail: number[] = [];
  const dot = text.lastIndexOf(':');
  if (text.includes('.')) {
    tail.push(...ipv4Bytes(text.slice(dot + 1)));
    text = `${text.slice(0, dot + 1)}0:0`;
  }
  const [head, rest] = text.split('::');
  const h = head ? head.split(':') : [];
  const r = rest !== undefined ? (rest ? rest.split(':') : []) : [];
  const groups = rest !== undefined ? [...h, ...Array(8 - h.length - r.length).fill('0'), ...r] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail.length) Buffer.from(tail).copy(out, 12);
  return out;
}

export function parseTrustPeers(list: string): PeerPrefix[] {
  const out: PeerPrefix[] = [];
  for (const raw of list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [ip, len] = raw.split('/');
    const kind = net.isIP(ip);
    if (kind === 0) throw new TrustPeersError(`--trust-peers: "${raw}" is not an address or CIDR`);
    const max = kind === 4 ? 32 : 128;
    const bits = len === undefined ? max : Number(len);
    if (!Number.isInteger(bits) || bits < 0 || bits > max || (len !== undefined && !/^\d+$/.test(len))) {
      throw new TrustPeersError(`--trust-peers: "${raw}" has a prefix length outside 0..${max}`);
    }
    const addr = Buffer.alloc(16);
    if (kind === 4) {
      addr[10] = 0xff;
      addr[11] = 0xff;
      Buffer.from(ipv4Bytes(ip)).copy(addr, 12);
    } else {
      ipv6Bytes(ip).copy(addr);
    }
    out.push({ prefixlen: kind === 4 ? bits + 96 : bits, addr, text: raw });
  }
  if (out.length === 0) throw new TrustPeersError('--trust-peers: give at least one address or CIDR');
  if (out.length > 256) throw new TrustPeersError('--trust-peers: at most 256 networks');
  return out;
}
