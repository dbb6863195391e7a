/**
 * The agent's OTLP/gRPC span exporter: the OpenTelemetry exporter's own
 * machinery (configuration from the OTEL_EXPORTER_OTLP_* variables,
 * credentials, headers, compression, timeouts, the export delegate,
 * self-observability metrics) assembled as
 * @opentelemetry/exporter-trace-otlp-grpc's OTLPTraceExporter assembles
 * it, with two parts swapped: requests are encoded by OtlpTraceEncoder,
 * which writes the same bytes several times faster, and to a plaintext
 * endpoint they are sent by GrpcHttp2Transport (Node's HTTP/2 client, no
 * copy of the request) instead of @grpc/grpc-js, which still carries them
 * to TLS and unix-socket endpoints. Responses are decoded by the library.
 *
 * It takes spans (a SpanExporter) or requests already encoded as the spans
 * ended (EncodedSpans, from the EncodingBatchProcessor: the agent's default
 * path), which it sends as they are: a BatchExporter of either.
 */
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPExporterBase, createOtlpNetworkExportDelegate } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyOtlpGrpcOptions,
  createOtlpGrpcExportDelegate,
  createOtlpGrpcExporterMetrics,
  type OTLPGRPCExporterConfigNode,
} from '@opentelemetry/otlp-grpc-exporter-base';
// The exporter's version, for the user agent it sends (pinned in package.json).
import { VERSION as EXPORTER_VERSION } from '@opentelemetry/otlp-grpc-exporter-base/build/src/version';
import type { IExportTraceServiceResponse, ISerializer } from '@opentelemetry/otlp-transformer';
// The trace parts only: the package's index also loads its metrics and logs
// serializers, and with them @opentelemetry/sdk-metrics and api-logs (~60
// modules the agent never runs). The version is pinned in package.json.
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer/build/src/trace/protobuf/trace';
import { OtlpTraceEncoder, type EncodedSpans } from './trace-encoder';
import { GrpcHttp2Transport } from './grpc-http2-transport';

/** The component type OTLPTraceExporter reports in its self-observability metrics. */
const COMPONENT_TYPE = 'otlp_grpc_span_exporter';

type Batch = ReadableSpan[] | EncodedSpans;

const isEncoded = (b: Batch): b is EncodedSpans => !Array.isArray(b);

/** The library's TraceExporterMetricsHelper, counting the spans of either kind of batch. */
const SPAN_METRICS = { name: 'span' as const, countItems: (b: Batch) => (isEncoded(b) ? b.spanCount : b.length) };

export function traceSerializer(encoder = new OtlpTraceEncoder()): ISerializer<Batch, IExportTraceServiceResponse> {
  return {
    serializeRequest: (b) => (isEncoded(b) ? b.bytes : encoder.encode(b)),
    deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
  };
}

/** How requests are sent (--otlp-transport). */
export type OtlpTransportChoice = 'auto' | 'grpc-js';

const GRPC_NAME = 'TraceExportService';
const GRPC_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

export class OtlpGrpcSpanExporter extends OTLPExporterBase<Batch> implements SpanExporter {
  /**
   * Which transport carries the requests: 'http2' (GrpcHttp2Transport, plaintext
   * endpoints: no copy of a request, which may then be reused once its export
   * is done) or 'grpc-js' (the library's, for TLS and unix sockets).
   */
  readonly transport: 'http2' | 'grpc-js';

  /**
   * `transport`: 'auto' sends to plaintext endpoints over Node's HTTP/2
   * client; 'grpc-js' sends every request over @grpc/grpc-js (its proxy
   * support, DNS re-resolution and load balancing across collectors), with
   * the same encoder.
   */
  constructor(config: OTLPGRPCExporterConfigNode = {}, transport: OtlpTransportChoice = 'auto') {
    const options = convertLegacyOtlpGrpcOptions(config, 'TRACES');
    const plaintext = !options.url.startsWith('unix:') && !options.credentials()._isSecure();
    const http2 = plaintext && transport === 'auto';
    super(
      http2
        ? createOtlpNetworkExportDelegate(
            options,
            traceSerializer(),
            createOtlpGrpcExporterMetrics(COMPONENT_TYPE, SPAN_METRICS, options.url, config.selfObsMeterProvider),
            new GrpcHttp2Transport({
              authority: options.url,
              path: GRPC_PATH,
              headers: () => options.metadata().toHttp2Headers(),
              compression: options.compression === 'gzip' ? 'gzip' : 'none',
              userAgent: `${config.userAgent ? `${config.userAgent} ` : ''}OTel-OTLP-Exporter-JavaScript/${EXPORTER_VERSION} gearbox-http2`,
            }),
          )
        : createOtlpGrpcExportDelegate(options, traceSerializer(), COMPONENT_TYPE, SPAN_METRICS, config.selfObsMeterProvider, GRPC_NAME, GRPC_PATH),
    );
    this.transport = http2 ? 'http2' : 'grpc-js';
  }
}
