/**
 * Checks received spans against the expected shape of a request's trace: a
 * chain of hops, each a span of a given service and kind whose parent is the
 * previous hop. Returns per-request verdicts and totals.
 */
import { OTLP_KIND_CLIENT, OTLP_KIND_SERVER, type ReceivedSpan } from './otlp-receiver';

export interface Hop {
  service: string;
  kind: 'SERVER' | 'CLIENT';
  name?: string;
}

export interface TraceVerdict {
  key: string;
  traceId?: string;
  exact: boolean;
  problems: string[];
}

export interface TraceReport {
  requests: number;
  exact: number;
  verdicts: TraceVerdict[];
  tracesTotal: number;
}

const KIND = { SERVER: OTLP_KIND_SERVER, CLIENT: OTLP_KIND_CLIENT };

export function byTrace(spans: ReceivedSpan[]): Map<string, ReceivedSpan[]> {
  const m = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    const list = m.get(s.traceId) ?? [];
    list.push(s);
    m.set(s.traceId, list);
  }
  return m;
}

/**
 * `rootOf(key)` finds the root span of each request (e.g. the load client's
 * CLIENT span for url.path = key); the rest of the trace must follow `chain`.
 */
export function checkChains(spans: ReceivedSpan[], keys: string[], rootOf: (s: ReceivedSpan) => string | undefined, chain: Hop[]): TraceReport {
  const traces = byTrace(spans);
  const rootsByKey = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    const k = rootOf(s);
    if (k === undefined) continue;
    const list = rootsByKey.get(k) ?? [];
    list.push(s);
    rootsByKey.set(k, list);
  }
  const verdicts: TraceVerdict[] = [];
  for (const key of keys) {
    const problems: string[] = [];
    const roots = rootsByKey.get(key) ?? [];
    if (roots.length !== 1) {
      verdicts.push({ key, exact: false, problems: [`${roots.length} root spans for ${key}`] });
      continue;
    }
    const root = roots[0];
    const trace = traces.get(root.traceId) ?? [];
    if (trace.length !== chain.length) problems.push(`trace has ${trace.length} spans, expected ${chain.length}`);
    let parent: ReceivedSpan | undefined;
    for (let i = 0; i < chain.length; i++) {
      const hop = chain[i];
      const candidates = trace.filter(
        (s) => s.resource['service.name'] === hop.service && s.kind === KIND[hop.kind] && (parent ? s.parentSpanId === parent.spanId : s.parentSpanId === ''),
      );
      if (candidates.length !== 1) {
        problems.push(`hop ${i} (${hop.service} ${hop.kind}): ${candidates.length} spans with the right parent`);
        break;
      }
      const span = candidates[0];
      if (hop.name && span.name !== hop.name) problems.push(`hop ${i} named ${span.name}, expected ${hop.name}`);
      if (parent && (span.startNs < parent.startNs || span.endNs > parent.endNs)) {
        problems.push(`hop ${i} (${hop.service}) [${span.startNs}, ${span.endNs}] outside its parent's window [${parent.startNs}, ${parent.endNs}]`);
      }
      if (span.traceId !== root.traceId) problems.push(`hop ${i} has another trace id`);
      parent = span;
    }
    verdicts.push({ key, traceId: root.traceId, exact: problems.length === 0, problems });
  }
  return { requests: keys.length, exact: verdicts.filter((v) => v.exact).length, verdicts, tracesTotal: traces.size };
}
