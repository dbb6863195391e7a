/**
 * What a protocol plug-in gives Gearbox. A protocol is one module under
 * src/protocols/ exporting one `Protocol` and registered in index.ts; the
 * correlator and the span builder use it through this interface only.
 *
 * Heads are the first bytes of a message the kernel copied (at most
 * GB_PAYLOAD_MAX): parsers must take cut and malformed input without
 * throwing (null: not this protocol, or not a head of it).
 */
import type { AttributeValue } from '@opentelemetry/api';

/** Where a span's attributes go (an Attributes object, or the OTLP encoder). */
export interface AttributeSink {
  attribute(key: string, value: AttributeValue): void;
}

/** What the span builder knows of the exchange besides its heads. */
export interface ExchangeSide {
  /** This host answered the request (a SERVER span). */
  server: boolean;
  remoteAddr: string;
  remotePort: number;
}

/** An error the response reports: `error.type`, and the status description if the protocol gives one. */
export interface ProtocolError {
  type: string;
  message?: string;
}

/** Several requests written back to back in one message (HTTP/1.1 pipelining). */
export interface Pipelining<Req> {
  /** More bytes follow the first request in `head`. */
  mayHoldMore(request: Req, head: Buffer): boolean;
  /** The requests back to back in `head`; the last may be cut. */
  splitRequests(head: Buffer): Buffer[];
  /** The responses back to back in `head`, at most `max`. */
  splitResponses(head: Buffer, max: number): Buffer[];
}

export interface Protocol<Req = unknown, Resp = unknown> {
  /** Short name: `http`, `redis`. */
  readonly name: string;
  /** The request head parsed, or null when it is not this protocol's. */
  parseRequest(head: Buffer): Req | null;
  /** The response head parsed, or null. */
  parseResponse(head: Buffer, request: Req): Resp | null;
  /** Bytes the whole response will have, when its head says so. */
  responseBytes(request: Req, response: Resp): number | undefined;
  /** The span's name, as the semantic conventions give it. */
  spanName(request: Req, response: Resp | undefined): string;
  /** Writes the protocol's attributes; returns the error the response reports, if any. */
  describe(request: Req, response: Resp | undefined, side: ExchangeSide, sink: AttributeSink): ProtocolError | undefined;
  pipelining?: Pipelining<Req>;
}

/** A registered protocol, whatever its head types (the registry holds several). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each plug-in's own head types
export type AnyProtocol = Protocol<any, any>;

/** An exchange's heads as one protocol reads them; `protocol` undefined: none recognised them (generic TCP). */
export interface ProtocolView {
  protocol?: AnyProtocol;
  request?: unknown;
  response?: unknown;
}
