/**
 * One gRPC unary call per export, over Node's own HTTP/2 client: the
 * transport of the agent's OTLP/gRPC exporter for plaintext endpoints (an
 * agent's usual collector is on the node or in the cluster). TLS and unix
 * socket endpoints keep the OpenTelemetry exporter's @grpc/grpc-js
 * transport (see otlp-grpc-exporter.ts).
 *
 * Why not @grpc/grpc-js here: it copies every request into a fresh buffer
 * with the 5-byte message prefix in front (its compression filter), and on
 * these virtual machines a ~200-700 KB copy into fresh memory costs a page
 * fault per 4 KB touched; with its per-call machinery that was 3.0-3.9 µs of
 * CPU per span for 400-span requests against 1.0 µs for the same bytes sent
 * here (docs/performance.md, docs/design/otlp-export.md). This transport writes the prefix and the
 * request as two writes, copies nothing, and resolves only once the stream
 * has closed, so the caller may reuse the request's memory afterwards.
 *
 * What it does of gRPC (the HTTP/2 protocol spec, grpc/doc/PROTOCOL-HTTP2.md):
 * POST to the method's path with content-type application/grpc, te:
 * trailers, grpc-timeout, the configured metadata (OTEL_EXPORTER_OTLP_HEADERS)
 * and user agent; gzip when OTEL_EXPORTER_OTLP_COMPRESSION=gzip; the
 * status from the trailers (or a trailers-only response); HTTP statuses,
 * reset streams and broken connections mapped to gRPC codes as the spec
 * maps them, so that the retry policy (retrying-exporter.ts) sees the same
 * codes @grpc/grpc-js would give. One HTTP/2 session is kept and replaced
 * when it closes, fails or is told to go away.
 */
import http2 from 'node:http2';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { ExportResponse, IExporterTransport } from '@opentelemetry/otlp-exporter-base';
import { GrpcStatus, grpcStatusName } from './grpc-status';

export { GrpcStatus } from './grpc-status';

export interface GrpcHttp2TransportOptions {
  /** host:port of a plaintext endpoint. */
  authority: string;
  /** The method, e.g. /opentelemetry.proto.collector.trace.v1.TraceService/Export. */
  path: string;
  /** Request metadata as HTTP/2 headers (read once, at the first call). */
  headers: () => http2.OutgoingHttpHeaders;
  compression: 'gzip' | 'none';
  userAgent: string;
}

/** A call that ended with a gRPC status other than OK; `code` is what the retry policy and the exporter's metrics read. */
export class GrpcCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`${code} ${grpcStatusName(code)}: ${details}`);
    this.name = 'GrpcCallError';
  }
}

/** HTTP status of a response without a gRPC status -> gRPC code (PROTOCOL-HTTP2.md, http-grpc-status-mapping.md). */
function codeOfHttpStatus(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** RST_STREAM error code of a stream that ended without a status -> gRPC code (PROTOCOL-HTTP2.md, "Errors"). */
function codeOfReset(rstCode: number): number {
  const c = http2.constants;
  if (rstCode === c.NGHTTP2_REFUSED_STREAM) return GrpcStatus.UNAVAILABLE;
  if (rstCode === c.NGHTTP2_CANCEL) return GrpcStatus.CANCELLED;
  if (rstCode === c.NGHTTP2_ENHANCE_YOUR_CALM) return GrpcStatus.RESOURCE_EXHAUSTED;
  if (rstCode === c.NGHTTP2_INADEQUATE_SECURITY) return GrpcStatus.PERMISSION_DENIED;
  return GrpcStatus.INTERNAL;
}

const gzip = promisify(zlib.gzip);

export class GrpcHttp2Transport implements IExporterTransport {
  private session?: http2.ClientHttp2Session;
  /** Calls in flight per session: a session with one keeps the process alive (the agent's last export at exit), an idle one does not. */
  private readonly active = new WeakMap<http2.ClientHttp2Session, number>();
  private metadata?: http2.OutgoingHttpHeaders;
  private closed = false;

  constructor(private readonly opts: GrpcHttp2TransportOptions) {}

  async send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    if (this.closed) return { status: 'failure', error: new Error('the OTLP transport is shut down') };
    let body = data;
    let compressed = 0;
    if (this.opts.compression === 'gzip') {
      try {
        body = await gzip(data);
      } catch (e) {
        return { status: 'failure', error: e as Error };
      }
      compressed = 1;
    }
    return new Promise((resolve) => this.call(body, compressed, timeoutMillis, resolve));
  }

  shutdown(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
  }

  /** The open session, or a new one. */
  private connect(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    // Node holds a session to 10 MB of buffered frames by default and
    // resets its streams past that (ENHANCE_YOUR_CALM): a flush sends many
    // ~1 MB requests side by side (as @grpc/grpc-js does, the limit is lifted).
    const session = http2.connect(`http://${this.opts.authority}`, { maxSessionMemory: Number.MAX_SAFE_INTEGER });
    const drop = () => {
      if (this.session === session) this.session = undefined;
    };
    // A failed connection reaches every stream on it as a stream error; the
    // session's own error only retires it.
    session.on('error', drop);
    session.on('goaway', drop);
    session.on('close', drop);
    session.unref(); // an idle connection does not keep the agent alive
    this.session = session;
    return session;
  }

  private call(body: Uint8Array, compressed: number, timeoutMillis: number, resolve: (r: ExportResponse) => void): void {
    this.metadata ??= this.opts.headers();
    const headers: http2.OutgoingHttpHeaders = {
      ...this.metadata,
      [http2.constants.HTTP2_HEADER_METHOD]: 'POST',
      [http2.constants.HTTP2_HEADER_PATH]: this.opts.path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': this.opts.userAgent,
    };
    const hasDeadline = Number.isFinite(timeoutMillis) && timeoutMillis > 0;
    // At most 8 digits (PROTOCOL-HTTP2.md): milliseconds up to ~27 hours.
    if (hasDeadline) headers['grpc-timeout'] = `${Math.min(Math.ceil(timeoutMillis), 99_999_999)}m`;
    if (compressed) headers['grpc-encoding'] = 'gzip';

    let status: number | undefined;
    let message = '';
    let httpStatus = 0;
    let failure: Error | undefined;
    let timedOut = false;
    const chunks: Buffer[] = [];
    const readStatus = (h: http2.IncomingHttpHeaders) => {
      const s = h['grpc-status'];
      if (s === undefined) return;
      status = Number(s);
      const m = h['grpc-message'];
      message = typeof m === 'string' ? percentDecoded(m) : '';
    };

    let req: http2.ClientHttp2Stream;
    let session: http2.ClientHttp2Session;
    try {
      session = this.connect();
      req = session.request(headers);
    } catch (e) {
      // The session was closing: a new one for the next attempt.
      this.session = undefined;
      resolve({ status: 'failure', error: new GrpcCallError(GrpcStatus.UNAVAILABLE, (e as Error).message) });
      return;
    }
    this.callStarted(session);
    const timer = hasDeadline
      ? setTimeout(() => {
          timedOut = true;
          req.close(http2.constants.NGHTTP2_CANCEL);
        }, timeoutMillis)
      : undefined;
    req.on('response', (h) => {
      httpStatus = Number(h[http2.constants.HTTP2_HEADER_STATUS]);
      readStatus(h); // a trailers-only response
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('trailers', readStatus);
    req.on('error', (e) => (failure = e));
    req.on('close', () => {
      clearTimeout(timer);
      this.callEnded(session);
      resolve(this.outcome({ status, message, httpStatus, failure, timedOut, rstCode: req.rstCode, chunks }));
    });

    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = compressed;
    prefix.writeUInt32BE(body.length, 1);
    req.write(prefix);
    req.end(body);
  }

  private callStarted(session: http2.ClientHttp2Session): void {
    const n = this.active.get(session) ?? 0;
    if (n === 0) session.ref();
    this.active.set(session, n + 1);
  }

  private callEnded(session: http2.ClientHttp2Session): void {
    const n = (this.active.get(session) ?? 1) - 1;
    this.active.set(session, n);
    if (n === 0 && !session.destroyed) session.unref();
  }

  private outcome(c: {
    status?: number;
    message: string;
    httpStatus: number;
    failure?: Error;
    timedOut: boolean;
    rstCode: number;
    chunks: Buffer[];
  }): ExportResponse {
    if (c.status === GrpcStatus.OK) {
      const data = c.chunks.length === 1 ? c.chunks[0] : Buffer.concat(c.chunks);
      try {
        return { status: 'success', data: responseMessage(data) };
      } catch {
        return { status: 'success' }; // the export succeeded; only its optional partial-success detail is unreadable
      }
    }
    if (c.status !== undefined) return failed(c.status, c.message);
    if (c.timedOut) return failed(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded');
    if (c.httpStatus && c.httpStatus !== 200) return failed(codeOfHttpStatus(c.httpStatus), `HTTP status ${c.httpStatus}`);
    const reset = (c.failure as { code?: string } | undefined)?.code === 'ERR_HTTP2_STREAM_ERROR';
    if (c.rstCode && (reset || !c.failure)) return failed(codeOfReset(c.rstCode), `stream reset with code ${c.rstCode}`);
    if (c.failure) return failed(GrpcStatus.UNAVAILABLE, c.failure.message); // no connection, or it broke
    return failed(GrpcStatus.INTERNAL, 'the response ended without a gRPC status');
  }
}

function percentDecoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function failed(code: number, details: string): ExportResponse {
  return { status: 'failure', error: new GrpcCallError(code, details) };
}

/** The message of a length-prefixed gRPC response body (empty: no message). */
function responseMessage(body: Buffer): Uint8Array | undefined {
  if (body.length < 5) return undefined;
  const length = body.readUInt32BE(1);
  const message = body.subarray(5, 5 + length);
  return body[0] === 1 ? zlib.gunzipSync(message) : message;
}
