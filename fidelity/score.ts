/**
 * Scores exported spans against ground truth logged by the services: for
 * every client request, the expected tree of spans (service, kind, path or
 * operation, parent) is rebuilt from the services' own logs and compared
 * with what the receiver got.
 */
import type { ReceivedSpan } from '../test/support/otlp-receiver';

export interface TruthLine {
  svc: string;
  in: string | null;
  out: string[];
}

export interface ExpectedSpan {
  service: string;
  kind: number; // OTLP: 2 SERVER, 3 CLIENT
  path?: string;
  name?: string;
  children: ExpectedSpan[];
}

export interface ScoreReport {
  requests: number;
  exact: number;
  missingSpans: number;
  /** Spans whose parent is another span than the right one. */
  wrongParents: number;
  /** Spans that are roots where a parent was expected (a visible miss, not a wrong link). */
  missingParents: number;
  mergedTraces: number;
  extraSpans: number;
  percentExact: number;
  examples: string[];
}

const SERVER = 2;
const CLIENT = 3;

/**
 * Builds the expected tree for one client request id. `proxies` are services
 * that forward a path unchanged (nginx) between the client and the handler.
 */
export function expectedTree(id: string, byIn: Map<string, TruthLine>, proxies: string[]): ExpectedSpan {
  const handle = (rid: string): ExpectedSpan => {
    const line = byIn.get(rid);
    if (!line) return { service: '?', kind: SERVER, path: `/r/${rid}`, children: [] };
    return {
      service: line.svc,
      kind: SERVER,
      path: `/r/${rid}`,
      children: line.out.map((o) =>
        o.endsWith('.redis')
          ? { service: line.svc, kind: CLIENT, name: 'INCR', children: [{ service: 'redis-server', kind: SERVER, name: 'INCR', children: [] }] }
          : { service: line.svc, kind: CLIENT, path: `/r/${o}`, children: [handle(o)] },
      ),
    };
  };
  let inner = handle(id);
  for (const p of [...proxies].reverse()) {
    inner = { service: p, kind: SERVER, path: `/r/${id}`, children: [{ service: p, kind: CLIENT, path: `/r/${id}`, children: [inner] }] };
  }
  return { service: 'client', kind: CLIENT, path: `/r/${id}`, children: [inner] };
}

function count(t: ExpectedSpan): number {
  return 1 + t.children.reduce((a, c) => a + count(c), 0);
}

function matches(s: ReceivedSpan, e: ExpectedSpan): boolean {
  if (s.resource['service.name'] !== e.service || s.kind !== e.kind) return false;
  if (e.path !== undefined) return s.attributes['url.path'] === e.path;
  return e.name === undefined || s.name === e.name;
}

/** The request id a span's url.path belongs to: /r/q12.a0.b1 -> q12 */
function requestOf(s: ReceivedSpan): string | undefined {
  const p = s.attributes['url.path'];
  if (typeof p !== 'string' || !p.startsWith('/r/')) return undefined;
  return p.slice(3).split('.')[0];
}

export function score(spans: ReceivedSpan[], truth: TruthLine[], proxies: string[] = []): ScoreReport {
  const byIn = new Map<string, TruthLine>();
  const ids: string[] = [];
  for (const t of truth) {
    if (t.svc === 'client') ids.push(...t.out);
    else if (t.in) byIn.set(t.in, t);
  }
  const children = new Map<string, ReceivedSpan[]>();
  const byTrace = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    children.set(s.parentSpanId, [...(children.get(s.parentSpanId) ?? []), s]);
    byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), s]);
  }
  const report: ScoreReport = {
    requests: ids.length,
    exact: 0,
    missingSpans: 0,
    wrongParents: 0,
    missingParents: 0,
    mergedTraces: 0,
    extraSpans: 0,
    percentExact: 0,
    examples: [],
  };
  for (const id of ids) {
    const tree = expectedTree(id, byIn, proxies);
    const roots = spans.filter((s) => matches(s, tree));
    const problems: string[] = [];
    let missing = 0;
    let wrong = 0;
    let parentless = 0;
    if (roots.length !== 1) {
      missing += count(tree);
      problems.push(`${roots.length} client spans`);
    } else {
      const walk = (actual: ReceivedSpan, expected: ExpectedSpan) => {
        const kids = children.get(actual.spanId) ?? [];
        const used = new Set<ReceivedSpan>();
        for (const e of expected.children) {
          const hit = kids.find((k) => !used.has(k) && matches(k, e));
          if (hit) {
            used.add(hit);
            walk(hit, e);
            continue;
          }
          const elsewhere = e.path !== undefined ? spans.find((s) => matches(s, e)) : undefined;
          if (elsewhere) {
            if (elsewhere.parentSpanId) wrong++;
            else parentless++;
            problems.push(
              `${e.service} ${e.kind === SERVER ? 'SERVER' : 'CLIENT'} ${e.path} has parent ${elsewhere.parentSpanId || '(none)'}, not ${actual.spanId}`,
            );
            walk(elsewhere, e);
          } else {
            missing += count(e);
            problems.push(`missing ${e.service} ${e.kind === SERVER ? 'SERVER' : 'CLIENT'} ${e.path ?? e.name}`);
          }
        }
      };
      walk(roots[0], tree);
      const trace = byTrace.get(roots[0].traceId) ?? [];
      const foreign = trace.filter((s) => {
        const r = requestOf(s);
        return r !== undefined && r !== id;
      });
      if (foreign.length > 0) {
        report.mergedTraces++;
        problems.push(`trace also holds ${foreign.length} spans of other requests`);
      }
      if (trace.length > count(tree)) {
        report.extraSpans += trace.length - count(tree);
        if (foreign.length === 0) problems.push(`trace has ${trace.length} spans, expected ${count(tree)}`);
      }
    }
    report.missingSpans += missing;
    report.wrongParents += wrong;
    report.missingParents += parentless;
    if (problems.length === 0) report.exact++;
    else if (report.examples.length < 5) report.examples.push(`${id}: ${problems.slice(0, 3).join('; ')}`);
  }
  report.percentExact = report.requests ? (100 * report.exact) / report.requests : 0;
  return report;
}

export function expectedSpanCount(truth: TruthLine[], proxies: string[] = []): number {
  const byIn = new Map<string, TruthLine>();
  const ids: string[] = [];
  for (const t of truth) {
    if (t.svc === 'client') ids.push(...t.out);
    else if (t.in) byIn.set(t.in, t);
  }
  return ids.reduce((a, id) => a + count(expectedTree(id, byIn, proxies)), 0);
}
