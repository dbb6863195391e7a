/**
 * HTTP/1.x: message heads parsed from the first bytes of a message (never
 * throws: anything that is not a well-formed head is null), and the plug-in
 * (`http1`) that names and describes HTTP spans per the semantic conventions.
 */
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { Protocol } from './protocol';
import { PAYLOAD_MAX } from '../events/layout';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

export interface HttpRequestHead {
  method: string;
  target: string;
  path: string;
  query?: string;
  version: string;
  host?: string;
  userAgent?: string;
  /** Bytes of the head, or undefined when it did not fit in the captured bytes. */
  headLength?: number;
  contentLength?: number;
}

export interface HttpResponseHead {
  status: number;
  version: string;
  headLength?: number;
  contentLength?: number;
  chunked: boolean;
  /** true when the head asks to close the connection after this response. */
  close: boolean;
}

const CR = 0x0d;
const LF = 0x0a;

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
/** What JavaScript's \s (and String.prototype.trim) matches among the Latin-1 characters. */
const isSpace = (c: number) => (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0xa0;

/** End of the first line (index of its CR), or -1 when there is none in reach. */
function firstLineEnd(buf: Buffer): number {
  const lf = buf.indexOf(LF);
  if (lf <= 1 || lf > 8192 || buf[lf - 1] !== CR) return -1;
  return lf - 1;
}

interface HeadFields {
  host?: string;
  userAgent?: string;
  /** Content-Length as a number; undefined when absent or not 1 to 15 digits. */
  contentLength?: number;
  /** Transfer-Encoding names chunked. */
  chunked: boolean;
  /** Connection names close / keep-alive. */
  close: boolean;
  keepAlive: boolean;
  headLength?: number;
}

/** The fields Gearbox reads; the last of a repeated field wins. */
const enum Field {
  Host,
  UserAgent,
  ContentLength,
  TransferEncoding,
  Connection,
}

/** Header names Gearbox reads, lower case, by length (other fields cost one length check). */
const WANTED_BY_LENGTH = new Map<number, [string, Field][]>();
for (const [name, field] of [
  ['host', Field.Host],
  ['user-agent', Field.UserAgent],
  ['content-length', Field.ContentLength],
  ['transfer-encoding', Field.TransferEncoding],
  ['connection', Field.Connection],
] as [string, Field][]) {
  const list = WANTED_BY_LENGTH.get(name.length) ?? [];
  list.push([name, field]);
  WANTED_BY_LENGTH.set(name.length, list);
}

/** buf[start, start+name.length) equals `name` (lower case ASCII), ignoring case. */
function nameIs(buf: Buffer, start: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = buf[start + i];
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== name.charCodeAt(i)) return false;
  }
  return true;
}

/** `word` (lower case ASCII) occurs in buf[start, end), ignoring case. */
function holds(buf: Buffer, start: number, end: number, word: string): boolean {
  for (let i = start; i + word.length <= end; i++) if (nameIs(buf, i, word)) return true;
  return false;
}

/** A Content-Length value (trimmed): 1 to 15 digits, else undefined. */
function lengthValue(buf: Buffer, start: number, end: number): number | undefined {
  if (end === start || end - start > 15) return undefined;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (!isDigit(c)) return undefined;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

/**
 * The few header fields Gearbox uses, in one pass over the bytes after the
 * first line (which ends at `lineEnd`). Without the terminating blank line
 * the last line may be cut: it is ignored, and headLength stays undefined.
 * Only host and user-agent become strings; the others are read from the
 * bytes (a head is parsed once per exchange, in the agent's hot path).
 */
function headers(buf: Buffer, lineEnd: number): HeadFields {
  // One pass over the bytes in JS: for heads of a few hundred bytes this is
  // cheaper than an indexOf call (into C++) per line end and per colon.
  const out: HeadFields = { chunked: false, close: false, keepAlive: false };
  const n = buf.length;
  let start = lineEnd + 2;
  for (;;) {
    let colon = -1;
    let lf = start;
    for (; lf < n; lf++) {
      const c = buf[lf];
      if (c === LF) break;
      if (c === 0x3a && colon < 0) colon = lf;
    }
    if (lf >= n) return out; // cut
    const end = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
    if (end === start) {
      out.headLength = lf + 1; // the blank line
      return out;
    }
    // RFC 9112: no whitespace between a field name and its colon.
    if (colon > start && colon < end) {
      const candidates = WANTED_BY_LENGTH.get(colon - start);
      if (candidates) {
        for (const [name, field] of candidates) {
          if (nameIs(buf, start, name)) {
            readField(buf, field, colon + 1, end, out);
            break;
          }
        }
      }
    }
    start = lf + 1;
  }
}

/** Field `field`, whose value is buf[start, end), into `out`, without the whitespace String.prototype.trim() takes off. */
function readField(buf: Buffer, field: Field, start: number, end: number, out: HeadFields): void {
  while (start < end && isSpace(buf[start])) start++;
  while (end > start && isSpace(buf[end - 1])) end--;
  switch (field) {
    case Field.Host:
      out.host = buf.toString('latin1', start, end);
      return;
    case Field.UserAgent:
      out.userAgent = buf.toString('latin1', start, end);
      return;
    case Field.ContentLength:
      out.contentLength = lengthValue(buf, start, end);
      return;
    case Field.TransferEncoding:
      out.chunked = holds(buf, start, end, 'chunked');
      return;
    case Field.Connection:
      out.close = holds(buf, start, end, 'close');
      out.keepAlive = holds(buf, start, end, 'keep-alive');
      return;
  }
}

/** Index of the space after a method-like token (3-7 upper-case letters) at the start, or -1. */
function methodEnd(buf: Buffer): number {
  const n = Math.min(buf.length, 8);
  for (let i = 0; i < n; i++) {
    const c = buf[i];
    if (c === 0x20) return i >= 3 ? i : -1;
    if (c < 0x41 || c > 0x5a) return -1;
  }
  return -1;
}

/** The method whose name is buf[0, end), or undefined (one of METHODS: no string is made). */
function methodNamed(buf: Buffer, end: number): string | undefined {
  for (const m of METHODS) {
    if (m.length !== end) continue;
    let i = 0;
    while (i < end && buf[i] === m.charCodeAt(i)) i++;
    if (i === end) return m;
  }
  return undefined;
}

export function looksLikeHttpRequest(buf: Buffer): boolean {
  const sp = methodEnd(buf);
  return sp > 0 && methodNamed(buf, sp) !== undefined;
}

/** "d.d" at buf[at, at+3), as a string ("1.1" and "1.0" without making one), or undefined. */
function versionAt(buf: Buffer, at: number): string | undefined {
  const major = buf[at];
  const minor = buf[at + 2];
  if (!isDigit(major) || buf[at + 1] !== 0x2e || !isDigit(minor)) return undefined;
  if (major === 0x31) return minor === 0x31 ? '1.1' : minor === 0x30 ? '1.0' : `1.${minor - 0x30}`;
  return `${major - 0x30}.${minor - 0x30}`;
}

const HTTP_SLASH = [0x48, 0x54, 0x54, 0x50, 0x2f]; // "HTTP/"

/**
 * The request line "METHOD SP target SP HTTP/d.d" (the target: no
 * whitespace), read from the bytes: the method and version come out as
 * constants, only the target is made a string.
 */
function requestLine(buf: Buffer, lineEnd: number): { method: string; target: string; version: string } | undefined {
  const sp = methodEnd(buf);
  const method = sp > 0 ? methodNamed(buf, sp) : undefined;
  const v = lineEnd - 9; // " HTTP/d.d"
  if (method === undefined || v <= sp + 1 || buf[v] !== 0x20) return undefined;
  for (let i = 0; i < 5; i++) if (buf[v + 1 + i] !== HTTP_SLASH[i]) return undefined;
  const version = versionAt(buf, v + 6);
  if (version === undefined) return undefined;
  for (let i = sp + 1; i < v; i++) if (isSpace(buf[i])) return undefined;
  return { method, target: buf.toString('latin1', sp + 1, v), version };
}

export function parseHttpRequest(buf: Buffer): HttpRequestHead | null {
  if (!looksLikeHttpRequest(buf)) return null;
  const lineEnd = firstLineEnd(buf);
  if (lineEnd < 0) return null;
  const line = requestLine(buf, lineEnd);
  if (!line) return null;
  const target = line.target;
  const q = target.indexOf('?');
  let pathPart = q >= 0 ? target.slice(0, q) : target;
  if (/^https?:\/\//i.test(pathPart)) {
    // absolute-form (proxies): keep only the path
    const slash = pathPart.indexOf('/', pathPart.indexOf('//') + 2);
    pathPart = slash >= 0 ? pathPart.slice(slash) : '/';
  }
  const h = headers(buf, lineEnd);
  return {
    method: line.method,
    target,
    path: pathPart,
    query: q >= 0 ? target.slice(q + 1) : undefined,
    version: line.version,
    host: h.host,
    userAgent: h.userAgent,
    headLength: h.headLength,
    contentLength: h.contentLength,
  };
}

const HTTP1_PREFIX = Buffer.from('HTTP/1.', 'latin1');

export function looksLikeHttpResponse(buf: Buffer): boolean {
  if (buf.length < 12) return false;
  for (let i = 0; i < HTTP1_PREFIX.length; i++) if (buf[i] !== HTTP1_PREFIX[i]) return false;
  return true;
}

export function parseHttpResponse(buf: Buffer): HttpResponseHead | null {
  if (!looksLikeHttpResponse(buf)) return null;
  const lineEnd = firstLineEnd(buf);
  if (lineEnd < 0) return null;
  // "HTTP/d.d SP ddd", then the end of the line or SP and a reason without CR.
  if (lineEnd < 12) return null;
  const version = versionAt(buf, 5);
  if (version === undefined || buf[8] !== 0x20 || !isDigit(buf[9]) || !isDigit(buf[10]) || !isDigit(buf[11])) return null;
  if (lineEnd > 12) {
    if (buf[12] !== 0x20) return null;
    for (let i = 13; i < lineEnd; i++) if (buf[i] === CR) return null;
  }
  const status = (buf[9] - 0x30) * 100 + (buf[10] - 0x30) * 10 + (buf[11] - 0x30);
  const h = headers(buf, lineEnd);
  return {
    version,
    status,
    headLength: h.headLength,
    contentLength: h.contentLength,
    chunked: h.chunked,
    close: h.close || (version === '1.0' && !h.keepAlive),
  };
}

/**
 * Bytes of the whole response whose head is `resp`, or undefined when the
 * head does not say (chunked, close-delimited, cut head).
 */
export function httpResponseLength(resp: HttpResponseHead, requestMethod?: string): number | undefined {
  if (resp.headLength === undefined) return undefined;
  const bodyless = requestMethod === 'HEAD' || resp.status === 204 || resp.status === 304 || (resp.status >= 100 && resp.status < 200);
  if (bodyless) return resp.headLength;
  if (resp.contentLength !== undefined && !resp.chunked) return resp.headLength + resp.contentLength;
  return undefined;
}

/**
 * Where the requests pipelined behind the first one start in `head`, by the
 * kernel's rule (bpf/pipelining.h, which says why): the server's kernel
 * numbers them by it, so the client's agent must split by it too
 * (test/build/pipelining-rules.test.ts runs both on the same heads).
 */
export function pipelinedRequestStarts(head: Buffer): number[] {
  // The scan starts at the first blank line (indexOf: native, where most
  // heads end the rule at once: no method follows the first blank line).
  const first = head.indexOf(BLANK_LINE);
  if (first < 0 || first >= PAYLOAD_MAX - 8 || first + 8 > head.length) return NONE;
  const starts: number[] = [];
  const n = head.length;
  for (let i = first; i < PAYLOAD_MAX - 8; i++) {
    if (i + 8 > n) break;
    if (head[i] !== CR || head[i + 1] !== LF || head[i + 2] !== CR || head[i + 3] !== LF) continue;
    const a = head[i + 4];
    const b = head[i + 5];
    const c = head[i + 6];
    const method =
      (a === 0x47 && b === 0x45 && c === 0x54) || // GET
      (a === 0x50 && (b === 0x4f || b === 0x55 || b === 0x41)) || // PO(ST) PU(T) PA(TCH)
      (a === 0x48 && b === 0x45) || // HE(AD)
      (a === 0x44 && b === 0x45) || // DE(LETE)
      (a === 0x4f && b === 0x50); // OP(TIONS)
    if (!method) break;
    if (starts.length === 255) break; // the kernel counts in a byte
    starts.push(i + 4);
  }
  return starts.length ? starts : NONE;
}

const BLANK_LINE = Buffer.from('\r\n\r\n', 'latin1');
const NONE: number[] = Object.freeze([]) as unknown as number[];

/** The requests back to back in `head` (pipelining), split where pipelinedRequestStarts says; the last may be cut. */
export function splitPipelinedRequests(head: Buffer): Buffer[] {
  if (head.length === 0) return [];
  const starts = pipelinedRequestStarts(head);
  if (starts.length === 0) return [head];
  const parts: Buffer[] = [];
  let from = 0;
  for (const at of starts) {
    parts.push(head.subarray(from, at));
    from = at;
  }
  parts.push(head.subarray(from));
  return parts;
}

/** Requests in `head`: the first and those pipelined behind it. */
export function countPipelinedRequests(head: Buffer): number {
  return head.length === 0 ? 0 : 1 + pipelinedRequestStarts(head).length;
}

/** The responses back to back in `buf` whose lengths their heads give. */
export function splitResponses(buf: Buffer, max: number): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length && out.length < max) {
    const rest = off === 0 ? buf : buf.subarray(off);
    const resp = parseHttpResponse(rest);
    if (!resp) break;
    out.push(rest);
    const len = httpResponseLength(resp);
    if (len === undefined) break;
    off += len;
  }
  return out;
}

/** HTTP/1.x spans: named by method; server errors are 5xx, client errors 4xx and 5xx. */
export const http1: Protocol<HttpRequestHead, HttpResponseHead> = {
  name: 'http',
  parseRequest: parseHttpRequest,
  parseResponse: (head) => parseHttpResponse(head),
  responseBytes: (request, response) => httpResponseLength(response, request.method),
  spanName: (request) => request.method,
  describe(request, response, side, sink) {
    sink.attribute(ATTR_HTTP_REQUEST_METHOD, request.method);
    sink.attribute(ATTR_URL_PATH, request.path);
    if (request.query !== undefined) sink.attribute(ATTR_URL_QUERY, request.query);
    sink.attribute(ATTR_URL_SCHEME, 'http');
    sink.attribute(ATTR_NETWORK_PROTOCOL_VERSION, request.version);
    if (request.userAgent) sink.attribute(ATTR_USER_AGENT_ORIGINAL, request.userAgent);
    if (!side.server) {
      const host = request.host ?? `${side.remoteAddr}:${side.remotePort}`;
      sink.attribute(ATTR_URL_FULL, `http://${host}${request.target.startsWith('/') ? request.target : '/'}`);
    }
    if (!response) return undefined;
    sink.attribute(ATTR_HTTP_RESPONSE_STATUS_CODE, response.status);
    return response.status >= 500 || (!side.server && response.status >= 400) ? { type: String(response.status) } : undefined;
  },
  pipelining: {
    mayHoldMore: (_request, head) => pipelinedRequestStarts(head).length > 0,
    splitRequests: splitPipelinedRequests,
    splitResponses,
  },
};
