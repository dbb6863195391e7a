/**
 * Protocol detection over message heads, used by the correlator (to see when a
 * response is complete) and the span builder (to name and describe spans).
 */
import { httpResponseLength, parseHttpRequest, parseHttpResponse, type HttpRequestHead, type HttpResponseHead } from './http1';
import { parseRedisCommand, parseRedisReply, type RedisCommand, type RedisReply } from './redis';

export type ProtocolView =
  | { protocol: 'http'; request: HttpRequestHead; response?: HttpResponseHead }
  | { protocol: 'redis'; command: RedisCommand; reply?: RedisReply }
  | { protocol: 'tcp' };

export function identify(requestHead?: Buffer, responseHead?: Buffer): ProtocolView {
  if (requestHead && requestHead.length > 0) {
    const req = parseHttpRequest(requestHead);
    if (req) return { protocol: 'http', request: req, response: responseHead ? (parseHttpResponse(responseHead) ?? undefined) : undefined };
    const cmd = parseRedisCommand(requestHead);
    if (cmd) return { protocol: 'redis', command: cmd, reply: responseHead ? (parseRedisReply(responseHead) ?? undefined) : undefined };
  }
  return { protocol: 'tcp' };
}

/**
 * Bytes the whole response will have, when its head says so (HTTP
 * Content-Length or a bodyless status, a Redis reply that fit in the head);
 * undefined when the protocol cannot say (chunked, cut heads, unknown).
 */
export function expectedResponseBytes(view: ProtocolView): number | undefined {
  if (view.protocol === 'http') return view.response ? httpResponseLength(view.response, view.request.method) : undefined;
  if (view.protocol === 'redis') return view.reply?.length;
  return undefined;
}
