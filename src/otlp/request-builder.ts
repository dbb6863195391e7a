/**
 * One OTLP request put together span by span (TraceRequestBuilder), and
 * what the exporters send: the request's bytes (EncodedSpans).
 */
import type { Resource } from '@opentelemetry/resources';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { SpanBytes } from './buffer-pools';
import type { OtlpTraceEncoder } from './trace-encoder';

/** Spans already encoded for OTLP, ready to send: the bytes of one ExportTraceServiceRequest. */
export interface EncodedSpans {
  readonly bytes: Uint8Array;
  readonly spanCount: number;
  /**
   * Present when `bytes` lies in a buffer lent by the encoder (a request
   * written with `reuse`): call once the export is done and no transport
   * reads the bytes any more; the memory goes to a later request. Later
   * calls do nothing.
   */
  readonly release?: () => void;
}

/**
 * One OTLP request being put together: each span is encoded when it is
 * added, and only its bytes are kept (outside the JavaScript heap), so a
 * span object does not outlive the code that built it. Kept until their
 * batch is sent, span objects (~1.2 KB of heap each: attributes, ids,
 * times) are copied by young-generation collections, promoted, and
 * collected again by the old generation's.
 */
export class TraceRequestBuilder {
  private readonly groups = new Map<Resource, Map<InstrumentationScope, SpanBytes>>();
  spanCount = 0;

  constructor(private readonly encoder: OtlpTraceEncoder) {}

  add(span: ReadableSpan): void {
    this.addField(span.resource, span.instrumentationScope, this.encoder.spanField(span));
  }

  /** A span already written as a `ScopeSpans.spans` field (spanField, spanFieldOf) by this builder's encoder. */
  addField(resource: Resource, scope: InstrumentationScope, bytes: Uint8Array): void {
    let byScope = this.groups.get(resource);
    if (!byScope) this.groups.set(resource, (byScope = new Map()));
    const group = byScope.get(scope);
    if (group) group.append(bytes);
    else byScope.set(scope, new SpanBytes(this.encoder.pool, bytes));
    this.spanCount++;
  }

  /** The resources of the spans added, in order of first appearance. */
  resources(): Resource[] {
    return [...this.groups.keys()];
  }

  /**
   * The request: spans by resource, then by scope, both in order of first
   * appearance. `reuse`: written into a buffer the encoder lends (see
   * EncodedSpans.release), for a transport that is done with the bytes when
   * its export is; else into a buffer of its own, exactly its size.
   */
  finish(reuse = false): EncodedSpans {
    const spanCount = this.spanCount;
    let encoded: EncodedSpans;
    if (reuse) {
      const { bytes, buffer } = this.encoder.lentRequest(this.groups);
      let lent = true;
      encoded = {
        bytes,
        spanCount,
        release: () => {
          if (!lent) return;
          lent = false;
          this.encoder.requestBuffers.give(buffer);
        },
      };
    } else {
      encoded = { bytes: this.encoder.request(this.groups), spanCount };
    }
    for (const scopes of this.groups.values()) for (const group of scopes.values()) group.release();
    this.groups.clear();
    return encoded;
  }
}
