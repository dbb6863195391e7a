/**
 * The OTLP messages of opentelemetry-proto's common and resource protos:
 * KeyValue attributes (keys encoded once and cached), AnyValue of every
 * kind, Resource and InstrumentationScope — byte for byte as the
 * OpenTelemetry serializer writes them.
 */
import type { Attributes, AttributeValue } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { InstrumentationScope } from '@opentelemetry/core';
import { FIXED64, INT64_END, INT64_MIN, LEN, ProtobufWriter, VARINT } from './protobuf-writer';
import {
  AnyValue,
  ArrayValue,
  InstrumentationScope as ScopeMsg,
  KeyValue,
  KeyValueList,
  Resource as ResourceMsg,
  ResourceSpans,
  ScopeSpans,
} from './trace-messages';

export class CommonWriter extends ProtobufWriter {
  /** KeyValue.key fields already encoded, by key. */
  private readonly keys = new Map<string, Uint8Array>();

  protected resource(resource: Resource): void {
    this.tag(ResourceSpans.resource, LEN);
    const start = this.beginLength(2);
    this.attributes(resource.attributes, ResourceMsg.attributes);
    this.tag(ResourceMsg.dropped_attributes_count, VARINT);
    this.varint(0); // dropped_attributes_count: the library writes 0
    this.endLength(start, 2);
  }

  protected scope(scope: InstrumentationScope & { attributes?: Attributes; droppedAttributesCount?: number }): void {
    this.tag(ScopeSpans.scope, LEN);
    const start = this.beginLength(1);
    this.tag(ScopeMsg.name, LEN);
    this.string(scope.name);
    if (scope.version) {
      this.tag(ScopeMsg.version, LEN);
      this.string(scope.version);
    }
    if (scope.attributes) this.attributes(scope.attributes, ScopeMsg.attributes);
    if (scope.droppedAttributesCount) {
      this.tag(ScopeMsg.dropped_attributes_count, VARINT);
      this.varint(scope.droppedAttributesCount);
    }
    this.endLength(start, 1);
  }

  /** Repeated KeyValue in field `field`. */
  protected attributes(attrs: Attributes, field: number): void {
    for (const key in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key)) continue;
      this.tag(field, LEN);
      this.keyValue(key, attrs[key]);
    }
  }

  protected keyValue(key: string, value: unknown): void {
    const start = this.beginLength(1);
    this.keyField(key);
    this.tag(KeyValue.value, LEN);
    const valueStart = this.beginLength(1);
    this.anyValue(value);
    this.endLength(valueStart, 1);
    this.endLength(start, 1);
  }

  /** The fields of an AnyValue (its enclosing length is the caller's). */
  protected anyValue(value: unknown): void {
    switch (typeof value) {
      case 'string':
        this.tag(AnyValue.string_value, LEN);
        this.string(value);
        return;
      case 'boolean':
        this.tag(AnyValue.bool_value, VARINT);
        this.varint(value ? 1 : 0);
        return;
      case 'number':
        if (Number.isInteger(value) && value >= INT64_MIN && value < INT64_END) {
          this.tag(AnyValue.int_value, VARINT);
          this.varint(value);
        } else {
          this.tag(AnyValue.double_value, FIXED64);
          this.double(value);
        }
        return;
      case 'object':
        if (value === null) return;
        if (value instanceof Uint8Array) {
          this.tag(AnyValue.bytes_value, LEN);
          this.bytes(value);
        } else if (Array.isArray(value)) {
          this.tag(AnyValue.array_value, LEN);
          const start = this.beginLength(1);
          for (const item of value as AttributeValue[]) {
            this.tag(ArrayValue.values, LEN);
            const itemStart = this.beginLength(1);
            this.anyValue(item);
            this.endLength(itemStart, 1);
          }
          this.endLength(start, 1);
        } else {
          this.tag(AnyValue.kvlist_value, LEN);
          const start = this.beginLength(1);
          const obj = value as Record<string, unknown>;
          for (const k in obj) {
            if (!Object.prototype.hasOwnProperty.call(obj, k)) continue;
            this.tag(KeyValueList.values, LEN);
            this.keyValue(k, obj[k]);
          }
          this.endLength(start, 1);
        }
        return;
      default:
      // undefined, functions, symbols, bigints: an empty AnyValue, as the library writes
    }
  }

  /** KeyValue.key, from a cache of encoded keys (attribute keys are few). */
  protected keyField(key: string): void {
    let encoded = this.keys.get(key);
    if (!encoded) {
      const at = this.pos;
      this.tag(KeyValue.key, LEN);
      this.string(key);
      encoded = new Uint8Array(this.buf.subarray(at, this.pos)); // a copy: subarray is a view of the scratch buffer
      if (this.keys.size >= 512) this.keys.clear();
      this.keys.set(key, encoded);
      return;
    }
    const n = encoded.length;
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = encoded[i];
    this.pos = p;
  }
}
