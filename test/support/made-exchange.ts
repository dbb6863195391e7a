/** An exchange made by hand for span tests: one request and (optionally) its response on 10.0.0.1:41000 -> 10.0.0.2:8080. */
import { Flag } from '../../src/events/layout';
import type { Exchange } from '../../src/trace/correlator';

export function madeExchange(role: number, req: string, resp: string | undefined, more: Partial<Exchange> = {}): Exchange {
  return {
    connId: 1,
    role,
    tuple: { localAddr: '10.0.0.2', localPort: 8080, remoteAddr: '10.0.0.1', remotePort: 41000 },
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    parentSpanId: '1111111111111111',
    flags: Flag.GB_F_SAMPLED | Flag.GB_F_HAS_PARENT,
    request: {
      seq: 1,
      startNs: 1_000_000_000_500,
      endNs: 1_000_000_001_000,
      bytes: req.length,
      events: 1,
      head: Buffer.from(req),
      sawStart: true,
      pid: 1,
      tid: 2,
    },
    response:
      resp === undefined
        ? undefined
        : {
            seq: 2,
            startNs: 1_000_000_002_000,
            endNs: 1_000_000_003_000,
            bytes: resp.length,
            events: 1,
            head: Buffer.from(resp),
            sawStart: true,
            pid: 1,
            tid: 2,
          },
    endReason: 'complete',
    ...more,
  };
}
