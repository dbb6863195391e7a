/**
 * The protocol registry: the plug-ins Gearbox recognises, tried in this
 * order on each request head (a protocol is one module beside this one; see
 * protocol.ts and docs/development.md). The correlator and the span builder
 * use protocols only through what is exported here.
 */
import type { AnyProtocol, ProtocolView } from './protocol';
import { http1 } from './http1';
import { redis } from './redis';

export type { ProtocolView } from './protocol';

export const PROTOCOLS: readonly AnyProtocol[] = [http1, redis];

/** No protocol recognised the request (generic TCP). */
const GENERIC: ProtocolView = Object.freeze({});

/** The exchange's heads as the first protocol that recognises its request head reads them. */
export function identify(requestHead?: Buffer, responseHead?: Buffer): ProtocolView {
  if (requestHead && requestHead.length > 0) {
    for (const protocol of PROTOCOLS) {
      const request = protocol.parseRequest(requestHead);
      if (request !== null) return { protocol, request, response: responseHead ? (protocol.parseResponse(responseHead, request) ?? undefined) : undefined };
    }
  }
  return GENERIC;
}

/**
 * Bytes the whole response will have, when its head says so (HTTP
 * Content-Length or a bodyless status, a Redis reply that fit in the head);
 * undefined when the protocol cannot say (chunked, cut heads, unknown).
 */
export function expectedResponseBytes(view: ProtocolView): number | undefined {
  return view.protocol && view.response !== undefined ? view.protocol.responseBytes(view.request, view.response) : undefined;
}

/** The requests written back to back in `head`, as its protocol splits them ([head] where it has no pipelining). */
export function splitRequests(head: Buffer): Buffer[] {
  if (head.length === 0) return [];
  const pipelining = identify(head).protocol?.pipelining;
  return pipelining ? pipelining.splitRequests(head) : [head];
}
