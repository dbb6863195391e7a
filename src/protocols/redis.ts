/**
 * Redis RESP (v2/v3) commands and replies, parsed from message heads. Never
 * throws; returns null for anything that is not RESP.
 */
export interface RedisCommand {
  name: string; // upper case, e.g. GET
  args: number;
}

export interface RedisReply {
  error?: string;
  /** Bytes of the whole reply when it fit in the captured head. */
  length?: number;
}

function readLine(buf: Buffer, off: number): { line: string; next: number } | null {
  const end = buf.indexOf('\r\n', off);
  if (end < 0) return null;
  return { line: buf.toString('latin1', off, end), next: end + 2 };
}

/** `*N\r\n$len\r\nCMD\r\n...`; inline commands (`PING\r\n`) too. */
export function parseRedisCommand(buf: Buffer): RedisCommand | null {
  if (buf.length < 4) return null;
  if (buf[0] !== 0x2a /* '*' */) {
    const first = readLine(buf, 0);
    if (!first || !/^[A-Za-z]{3,16}( |$)/.test(first.line)) return null;
    const parts = first.line.split(' ').filter(Boolean);
    return INLINE.has(parts[0].toUpperCase()) ? { name: parts[0].toUpperCase(), args: parts.length - 1 } : null;
  }
  const head = readLine(buf, 0);
  if (!head) return null;
  const n = Number(head.line.slice(1));
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) return null;
  const lenLine = readLine(buf, head.next);
  if (!lenLine || lenLine.line[0] !== '$') return null;
  const len = Number(lenLine.line.slice(1));
  if (!Number.isInteger(len) || len < 1 || len > 64) return null;
  if (lenLine.next + len > buf.length) return null;
  const name = buf.toString('latin1', lenLine.next, lenLine.next + len).toUpperCase();
  if (!/^[A-Z][A-Z.\-_|]*$/.test(name)) return null;
  return { name, args: n - 1 };
}

const INLINE = new Set(['PING', 'GET', 'SET', 'DEL', 'INCR', 'EXISTS', 'KEYS', 'INFO', 'QUIT', 'ECHO', 'MGET', 'HGET', 'HSET', 'LPUSH', 'RPUSH', 'LPOP', 'RPOP']);

/** Length of one RESP value at `off`, or -1 when it is incomplete, -2 when invalid. */
function valueLength(buf: Buffer, off: number, depth: number): number {
  if (depth > 8 || off >= buf.length) return -1;
  const l = readLine(buf, off);
  if (!l) return -1;
  const t = l.line[0];
  const rest = l.line.slice(1);
  switch (t) {
    case '+': case '-': case ':': case '_': case ',': case '#': case '(':
      return l.next - off;
    case '$': case '!': case '=': {
      const n = Number(rest);
      if (!Number.isInteger(n) || n < -1) return -2;
      if (n === -1) return l.next - off;
      return l.next + n + 2 <= buf.length ? l.next + n + 2 - off : -1;
    }
    case '*': case '%': case '~': case '>': {
      const n = Number(rest);
      if (!Number.isInteger(n) || n < -1) return -2;
      let pos = l.next;
      const items = t === '%' ? n * 2 : n;
      for (let i = 0; i < items; i++) {
        const len = valueLength(buf, pos, depth + 1);
        if (len < 0) return len;
        pos += len;
      }
      return pos - off;
    }
    default:
      return -2;
  }
}

export function looksLikeRedisReply(buf: Buffer): boolean {
  return buf.length >= 3 && '+-:$*_,#(!=%~>'.includes(String.fromCharCode(buf[0])) && buf.indexOf('\r\n') > 0;
}

export function parseRedisReply(buf: Buffer): RedisReply | null {
  if (!looksLikeRedisReply(buf)) return null;
  const len = valueLength(buf, 0, 0);
  if (len === -2) return null;
  const reply: RedisReply = {};
  if (len > 0) reply.length = len;
  if (buf[0] === 0x2d /* '-' */) reply.error = readLine(buf, 0)?.line.slice(1);
  return reply;
}
