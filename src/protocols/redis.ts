/**
 * Redis RESP (v2/v3): commands and replies parsed from message heads (never
 * throws; null for anything that is not RESP), and the plug-in (`redis`)
 * that names and describes Redis spans per the semantic conventions.
 */
import { ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME, ATTR_NETWORK_PROTOCOL_NAME } from '@opentelemetry/semantic-conventions';
import type { Protocol } from './protocol';

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

/**
 * The decimal integer of RESP line `*N` or `$N` whose type byte is at `at`
 * (digits, then CR LF): [value, index after the LF], or null. At most 15
 * digits (exact in a double); the callers bound the value further.
 */
function lineNumber(buf: Buffer, at: number): [number, number] | null {
  let v = 0;
  let i = at + 1;
  const end = Math.min(buf.length, at + 16); // digits at at+1 .. at+15
  for (; i < end; i++) {
    const c = buf[i];
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
  }
  if (i === at + 1 || i + 1 >= buf.length || buf[i] !== 0x0d || buf[i + 1] !== 0x0a) return null;
  return [v, i + 2];
}

/** A byte of a command's name: a letter (either case), or . - _ | after the first. */
function isNameByte(c: number, first: boolean): boolean {
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  return !first && (c === 0x2e || c === 0x2d || c === 0x5f || c === 0x7c);
}

/**
 * `*N\r\n$len\r\nCMD\r\n...`; inline commands (`PING\r\n`) too. Read from
 * the bytes: only the command's name is made a string (a request's head is
 * parsed once per exchange, in the agent's hot path).
 */
export function parseRedisCommand(buf: Buffer): RedisCommand | null {
  if (buf.length < 4) return null;
  if (buf[0] !== 0x2a /* '*' */) {
    if (!isNameByte(buf[0], true)) return null; // binary and other text protocols: no line is made
    const first = readLine(buf, 0);
    if (!first || !/^[A-Za-z]{3,16}( |$)/.test(first.line)) return null;
    const parts = first.line.split(' ').filter(Boolean);
    return INLINE.has(parts[0].toUpperCase()) ? { name: parts[0].toUpperCase(), args: parts.length - 1 } : null;
  }
  const head = lineNumber(buf, 0);
  if (!head || head[0] < 1 || head[0] > 1_000_000) return null;
  const at = head[1];
  if (buf[at] !== 0x24 /* '$' */) return null;
  const lenLine = lineNumber(buf, at);
  if (!lenLine) return null;
  const [len, start] = lenLine;
  if (len < 1 || len > 64 || start + len > buf.length) return null;
  let lower = false;
  for (let i = 0; i < len; i++) {
    const c = buf[start + i];
    if (!isNameByte(c, i === 0)) return null;
    if (c >= 0x61 && c <= 0x7a) lower = true;
  }
  const raw = buf.toString('latin1', start, start + len);
  return { name: lower ? raw.toUpperCase() : raw, args: head[0] - 1 };
}

const INLINE = new Set([
  'PING',
  'GET',
  'SET',
  'DEL',
  'INCR',
  'EXISTS',
  'KEYS',
  'INFO',
  'QUIT',
  'ECHO',
  'MGET',
  'HGET',
  'HSET',
  'LPUSH',
  'RPUSH',
  'LPOP',
  'RPOP',
]);

/** Length of one RESP value at `off`, or -1 when it is incomplete, -2 when invalid. */
function valueLength(buf: Buffer, off: number, depth: number): number {
  if (depth > 8 || off >= buf.length) return -1;
  const l = readLine(buf, off);
  if (!l) return -1;
  const t = l.line[0];
  const rest = l.line.slice(1);
  switch (t) {
    case '+':
    case '-':
    case ':':
    case '_':
    case ',':
    case '#':
    case '(':
      return l.next - off;
    case '$':
    case '!':
    case '=': {
      const n = Number(rest);
      if (!Number.isInteger(n) || n < -1) return -2;
      if (n === -1) return l.next - off;
      return l.next + n + 2 <= buf.length ? l.next + n + 2 - off : -1;
    }
    case '*':
    case '%':
    case '~':
    case '>': {
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

/** Redis spans: named by command; an error reply is the span's error. */
export const redis: Protocol<RedisCommand, RedisReply> = {
  name: 'redis',
  parseRequest: parseRedisCommand,
  parseResponse: (head) => parseRedisReply(head),
  responseBytes: (_command, reply) => reply.length,
  spanName: (command) => command.name,
  describe(command, reply, _side, sink) {
    sink.attribute(ATTR_DB_SYSTEM_NAME, 'redis');
    sink.attribute(ATTR_DB_OPERATION_NAME, command.name);
    sink.attribute(ATTR_NETWORK_PROTOCOL_NAME, 'resp');
    if (reply?.error === undefined) return undefined;
    return { type: reply.error.split(' ')[0] || 'redis_error', message: reply.error };
  },
};
