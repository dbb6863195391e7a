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

  /** keepSpans: false counts spans without keeping them (benchmarks). */
  constructor(private readonly keepSpans = true) {}

  private server = new grpc.Server();
  port = 0;

  async start(): Promise<void> {
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
    this.server.addService(service, {
      Export: (call: { request: any }, cb: (e: null, r: object) => void) => { // eslint-disable-line @typescript-eslint/no-explicit-any
        this.requests++;
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
        cb(null, {});
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }
}
