/**
 * The agent's OTLP/gRPC span exporter: the OpenTelemetry exporter's own
 * machinery (configuration from the OTEL_EXPORTER_OTLP_* variables,
 * credentials, headers, compression, timeouts, the gRPC transport and its
 * retry of transient failures, self-observability metrics) assembled exactly
 * as @opentelemetry/exporter-trace-otlp-grpc's OTLPTraceExporter assembles
 * it, with one part swapped: requests are encoded by OtlpTraceEncoder, which
 * writes the same bytes several times faster. Responses are decoded by the
 * library.
 *
 * It takes spans (a SpanExporter) or requests already encoded as the spans
 * ended (EncodedSpans, from the EncodingBatchProcessor: the agent's default
 * path), which it sends as they are: a BatchExporter of either.
 */
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyOtlpGrpcOptions, createOtlpGrpcExportDelegate, type OTLPGRPCExporterConfigNode } from '@opentelemetry/otlp-grpc-exporter-base';
import type { IExportTraceServiceResponse, ISerializer } from '@opentelemetry/otlp-transformer';
// The trace parts only: the package's index also loads its metrics and logs
// serializers, and with them @opentelemetry/sdk-metrics and api-logs (~60
// modules the agent never runs). The version is pinned in package.json.
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer/build/src/trace/protobuf/trace';
import { OtlpTraceEncoder, type EncodedSpans } from './otlp-trace-encoder';

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

export class OtlpGrpcSpanExporter extends OTLPExporterBase<Batch> implements SpanExporter {
  constructor(config: OTLPGRPCExporterConfigNode = {}) {
    super(
      createOtlpGrpcExportDelegate(
        convertLegacyOtlpGrpcOptions(config, 'TRACES'),
        traceSerializer(),
        COMPONENT_TYPE,
        SPAN_METRICS,
        config.selfObsMeterProvider,
        'TraceExportService',
        '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      ),
    );
  }
}
