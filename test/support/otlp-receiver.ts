/**
 * A real OTLP/gRPC trace receiver for tests, written independently of the
 * exporter: @grpc/grpc-js serving opentelemetry-proto's TraceService (the
 * .proto files shipped with @elastic/mockotlpserver). Spans are flattened
 * into plain records with hex ids.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number; // OTLP enum: 2 SERVER, 3 CLIENT
  startNs: bigint;
  endNs: bigint;
  statusCode: number;
  attributes: Record<string, string | number | boolean>;
  resource: Record<string, string | number | boolean>;
}

export const OTLP_KIND_SERVER = 2;
export const OTLP_KIND_CLIENT = 3;

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };

function attrs(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) {
    const v = kv.value ?? {};
    if (v.stringValue !== undefined) out[kv.key] = v.stringValue;
    else if (v.intValue !== undefined) out[kv.key] = Number(v.intValue);
    else if (v.boolValue !== undefined) out[kv.key] = v.boolValue;
    else if (v.doubleValue !== undefined) out[kv.key] = v.doubleValue;
  }
  return out;
}

const hex = (b: Buffer | undefined) => (b ? Buffer.from(b).toString('hex') : '');

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  requests = 0;
  /** Spans received, also when they are not kept. */
  spanCount = 0;

  /**
   * How Export answers: 'ok'; 'unavailable' (gRPC UNAVAILABLE, retryable,
   * nothing kept); 'reject' (INVALID_ARGUMENT, permanent, nothing kept);
   * 'slow' (keeps the spans, answers after slowMs). Changeable while running.
   */
  behaviour: 'ok' | 'unavailable' | 'reject' | 'slow' = 'ok';
  slowMs = 5000;
  /** The metadata (request headers) of the last Export call. */
  lastMetadata: Record<string, unknown> = {};

  /** keepSpans: false counts spans without keeping them (benchmarks). */
  constructor(private readonly keepSpans = true) {}

  private server = new grpc.Server();
  port = 0;

  /** `port` 0 picks a free one; a fixed port lets a test stop and restart the receiver. */
  async start(port = 0): Promise<void> {
    this.port = port;
    const protoRoot = path.dirname(require.resolve('@elastic/mockotlpserver/package.json'));
    const def = protoLoader.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', {
      includeDirs: [protoRoot],
      keepCase: false,
      longs: String,
      enums: Number,
      defaults: false,
    });
    const pkg = grpc.loadPackageDefinition(def) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const service = pkg.opentelemetry.proto.collector.trace.v1.TraceService.service;
    if (!this.keepSpans) {
      // Count without decoding: the request stays bytes and only the span
      // fields are walked (a receiver as fast as a Collector's, for benchmarks).
      const raw = { ...service.Export, requestDeserialize: (b: Buffer) => b };
      this.server.addService(
        { Export: raw },
        {
          Export: (call: { request: Buffer }, cb: (e: null, r: object) => void) => {
            this.requests++;
            this.spanCount += countSpans(call.request);
            cb(null, {});
          },
        },
      );
      return this.bind();
    }
    this.server.addService(service, {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the request as proto-loader decodes it
      Export: (call: { request: any; metadata: grpc.Metadata }, cb: (e: grpc.ServiceError | null, r?: object) => void) => {
        this.requests++;
        this.lastMetadata = call.metadata.getMap();
        if (this.behaviour === 'unavailable' || this.behaviour === 'reject') {
          const code = this.behaviour === 'reject' ? grpc.status.INVALID_ARGUMENT : grpc.status.UNAVAILABLE;
          return cb({ name: 'ReceiverError', message: `receiver answers ${this.behaviour} (test)`, code, details: 'test', metadata: new grpc.Metadata() });
        }

        for (const rs of call.request.resourceSpans ?? []) {
          const resource = attrs(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            this.spanCount += ss.spans?.length ?? 0;
            if (!this.keepSpans) continue;
            for (const s of ss.spans ?? []) {
              this.spans.push({
                traceId: hex(s.traceId),
                spanId: hex(s.spanId),
                parentSpanId: hex(s.parentSpanId),
                name: s.name,
                kind: s.kind ?? 0,
                startNs: BigInt(s.startTimeUnixNano ?? 0),
                endNs: BigInt(s.endTimeUnixNano ?? 0),
                statusCode: s.status?.code ?? 0,
                attributes: attrs(s.attributes),
                resource,
              });
            }
          }
        }
        if (this.behaviour === 'slow') setTimeout(() => cb(null, {}), this.slowMs);
        else cb(null, {});
      },
    });
    return this.bind();
  }

  private async bind(): Promise<void> {
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`127.0.0.1:${this.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }

  /** Stops at once, dropping calls in flight (an endpoint that goes away); `start(port)` again on a new server. */
  kill(): void {
    this.server.forceShutdown();
    this.server = new grpc.Server();
  }
}

/** Walks protobuf length-delimited field `field` of `buf[start, end)`, calling `each` per occurrence. */
function eachField(buf: Buffer, start: number, end: number, field: number, each: (s: number, e: number) => void): void {
  let i = start;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < end) {
    const key = varint();
    const wire = key & 7;
    if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const len = varint();
      if (key >>> 3 === field) each(i, i + len);
      i += len;
    } else throw new Error(`unexpected protobuf wire type ${wire}`);
  }
}

/** Spans in an ExportTraceServiceRequest: resource_spans(1) -> scope_spans(2) -> spans(2). */
function countSpans(req: Buffer): number {
  let n = 0;
  eachField(req, 0, req.length, 1, (rs, re) => eachField(req, rs, re, 2, (ss, se) => eachField(req, ss, se, 2, () => n++)));
  return n;
}
