/**
 * Protocol detection over message heads, used by the correlator (to see when a
 * response is complete) and the span builder (to name and describe spans).
 */
import { httpResponseComplete, parseHttpRequest, parseHttpResponse, type HttpRequestHead, type HttpResponseHead } from './http1';
import { parseRedisCommand, parseRedisReply, type RedisCommand, type RedisReply } from './redis';

export type ProtocolView =
  | { protocol: 'http'; request: HttpRequestHead; response?: HttpResponseHead }
  | { protocol: 'redis'; command: RedisCommand; reply?: RedisReply }
  | { protocol: 'tcp' };

export function identify(requestHead?: Buffer, responseHead?: Buffer): ProtocolView {
  if (requestHead && requestHead.length > 0) {
    const req = parseHttpRequest(requestHead);
    if (req) return { protocol: 'http', request: req, response: responseHead ? parseHttpResponse(responseHead) ?? undefined : undefined };
    const cmd = parseRedisCommand(requestHead);
    if (cmd) return { protocol: 'redis', command: cmd, reply: responseHead ? parseRedisReply(responseHead) ?? undefined : undefined };
  }
  return { protocol: 'tcp' };
}

/**
 * true when the response is known to be complete after `responseBytes`
 * bytes; false when it is known not to be, or when the protocol cannot say.
 */
export function responseComplete(requestHead: Buffer | undefined, responseHead: Buffer | undefined, responseBytes: number): boolean {
  if (!requestHead || !responseHead) return false;
  const req = parseHttpRequest(requestHead);
  if (req) {
    const resp = parseHttpResponse(responseHead);
    return resp ? httpResponseComplete(resp, responseBytes, req.method) === true : false;
  }
  if (parseRedisCommand(requestHead)) {
    const reply = parseRedisReply(responseHead);
    return reply?.length !== undefined && reply.length === responseBytes;
  }
  return false;
}
