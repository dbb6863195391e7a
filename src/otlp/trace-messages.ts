/**
 * Field numbers of the OTLP messages the trace encoder writes, from
 * opentelemetry-proto (v1.4.0): collector/trace/v1/trace_service.proto,
 * trace/v1/trace.proto, resource/v1/resource.proto, common/v1/common.proto.
 */

export const ExportTraceServiceRequest = { resource_spans: 1 } as const;

export const ResourceSpans = { resource: 1, scope_spans: 2, schema_url: 3 } as const;

export const ScopeSpans = { scope: 1, spans: 2, schema_url: 3 } as const;

export const Span = {
  trace_id: 1,
  span_id: 2,
  trace_state: 3,
  parent_span_id: 4,
  name: 5,
  kind: 6,
  start_time_unix_nano: 7,
  end_time_unix_nano: 8,
  attributes: 9,
  dropped_attributes_count: 10,
  events: 11,
  dropped_events_count: 12,
  links: 13,
  dropped_links_count: 14,
  status: 15,
  flags: 16,
} as const;

export const SpanEvent = { time_unix_nano: 1, name: 2, attributes: 3, dropped_attributes_count: 4 } as const;

/** Span.Link: trace_id, span_id and trace_state share Span's numbers. */
export const SpanLink = { trace_id: 1, span_id: 2, trace_state: 3, attributes: 4, dropped_attributes_count: 5, flags: 6 } as const;

export const Status = { message: 2, code: 3 } as const;

export const Resource = { attributes: 1, dropped_attributes_count: 2 } as const;

export const InstrumentationScope = { name: 1, version: 2, attributes: 3, dropped_attributes_count: 4 } as const;

export const KeyValue = { key: 1, value: 2 } as const;

export const AnyValue = { string_value: 1, bool_value: 2, int_value: 3, double_value: 4, array_value: 5, kvlist_value: 6, bytes_value: 7 } as const;

/** ArrayValue and KeyValueList: both a repeated field 1. */
export const ArrayValue = { values: 1 } as const;
export const KeyValueList = { values: 1 } as const;

/** Span flags: the low byte is the W3C trace flags. */
export const SPAN_FLAGS_HAS_IS_REMOTE = 0x100;
export const SPAN_FLAGS_IS_REMOTE = 0x200;
