/**
 * HTTP/1.x message heads, parsed from the first bytes of a message. Parsing
 * never throws: anything that is not a well-formed head returns null.
 */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

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

function firstLine(buf: Buffer): string | null {
  const end = buf.indexOf('\r\n');
  if (end <= 0 || end > 8192) return null;
  return buf.toString('latin1', 0, end);
}

interface HeadFields {
  host?: string;
  userAgent?: string;
  contentLength?: string;
  transferEncoding?: string;
  connection?: string;
  headLength?: number;
}

/** The few header fields Gearbox uses, in one pass over the head. */
function headers(buf: Buffer): HeadFields {
  const text = buf.toString('latin1');
  const endIdx = text.indexOf('\r\n\r\n');
  const limit = endIdx >= 0 ? endIdx : text.length;
  const out: HeadFields = { headLength: endIdx >= 0 ? endIdx + 4 : undefined };
  let pos = text.indexOf('\r\n');
  while (pos >= 0 && pos < limit) {
    const start = pos + 2;
    let end = text.indexOf('\r\n', start);
    // Without the terminating blank line the last line may be cut: ignore it.
    if (end < 0 || end > limit) {
      if (endIdx < 0) break;
      end = limit;
    }
    const c = text.indexOf(':', start);
    if (c > start && c < end) {
      const name = text.slice(start, c).trim().toLowerCase();
      const value = () => text.slice(c + 1, end).trim();
      if (name === 'host') out.host = value();
      else if (name === 'user-agent') out.userAgent = value();
      else if (name === 'content-length') out.contentLength = value();
      else if (name === 'transfer-encoding') out.transferEncoding = value();
      else if (name === 'connection') out.connection = value();
    }
    pos = end;
  }
  return out;
}

function parseLength(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,15}$/.test(v)) return undefined;
  return Number(v);
}

export function looksLikeHttpRequest(buf: Buffer): boolean {
  const sp = buf.indexOf(' ');
  return sp > 2 && sp < 8 && METHODS.has(buf.toString('latin1', 0, sp));
}

// A head is parsed once however many times it is asked about (correlator, span builder).
const requestMemo = new WeakMap<Buffer, HttpRequestHead | null>();
const responseMemo = new WeakMap<Buffer, HttpResponseHead | null>();

export function parseHttpRequest(buf: Buffer): HttpRequestHead | null {
  let r = requestMemo.get(buf);
  if (r === undefined) {
    r = parseHttpRequestUncached(buf);
    requestMemo.set(buf, r);
  }
  return r;
}

export function parseHttpResponse(buf: Buffer): HttpResponseHead | null {
  let r = responseMemo.get(buf);
  if (r === undefined) {
    r = parseHttpResponseUncached(buf);
    responseMemo.set(buf, r);
  }
  return r;
}

function parseHttpRequestUncached(buf: Buffer): HttpRequestHead | null {
  if (!looksLikeHttpRequest(buf)) return null;
  const line = firstLine(buf);
  if (!line) return null;
  const m = /^([A-Z]+) (\S+) HTTP\/(\d\.\d)$/.exec(line);
  if (!m || !METHODS.has(m[1])) return null;
  const target = m[2];
  const q = target.indexOf('?');
  let pathPart = q >= 0 ? target.slice(0, q) : target;
  if (/^https?:\/\//i.test(pathPart)) {
    // absolute-form (proxies): keep only the path
    const slash = pathPart.indexOf('/', pathPart.indexOf('//') + 2);
    pathPart = slash >= 0 ? pathPart.slice(slash) : '/';
  }
  const h = headers(buf);
  return {
    method: m[1],
    target,
    path: pathPart,
    query: q >= 0 ? target.slice(q + 1) : undefined,
    version: m[3],
    host: h.host,
    userAgent: h.userAgent,
    headLength: h.headLength,
    contentLength: parseLength(h.contentLength),
  };
}

export function looksLikeHttpResponse(buf: Buffer): boolean {
  return buf.length >= 12 && buf.toString('latin1', 0, 7) === 'HTTP/1.';
}

function parseHttpResponseUncached(buf: Buffer): HttpResponseHead | null {
  if (!looksLikeHttpResponse(buf)) return null;
  const line = firstLine(buf);
  if (!line) return null;
  const m = /^HTTP\/(\d\.\d) (\d{3})(?: .*)?$/.exec(line);
  if (!m) return null;
  const h = headers(buf);
  const te = h.transferEncoding?.toLowerCase() ?? '';
  const conn = h.connection?.toLowerCase() ?? '';
  return {
    version: m[1],
    status: Number(m[2]),
    headLength: h.headLength,
    contentLength: parseLength(h.contentLength),
    chunked: te.includes('chunked'),
    close: conn.includes('close') || (m[1] === '1.0' && !conn.includes('keep-alive')),
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

/** The requests back to back in `buf` (pipelining); the last may be cut. */
export function splitPipelinedRequests(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    const rest = off === 0 ? buf : buf.subarray(off); // the whole head's parse is memoized
    const req = parseHttpRequest(rest);
    if (!req) break;
    if (req.headLength === undefined) {
      out.push(rest);
      break;
    }
    const len = req.headLength + (req.contentLength ?? 0);
    out.push(rest.subarray(0, len));
    off += len;
  }
  return out;
}

/** Counts complete request heads back to back in `buf` (pipelining). */
export function countPipelinedRequests(buf: Buffer): number {
  return splitPipelinedRequests(buf).filter((r) => parseHttpRequest(r)?.headLength !== undefined).length;
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
