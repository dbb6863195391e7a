/**
 * Agent ceiling on recorded kernel events: replays test/fixtures/recorded
 * through the live agent's decoder, correlator and span builder (no network)
 * and prints events per second. `node dist/bench/replay.js [rounds]`
 */
import fs from 'node:fs';
import path from 'node:path';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { decodeEvent } from '../src/events/decoder';
import { forEachRecord } from '../src/events/replay';
import { Correlator } from '../src/trace/correlator';
import { buildSpan } from '../src/export/span-builder';
import { WallClock, nodeClock } from '../src/export/clock';

const DIR = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'recorded');
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.events'));
const data = files.map((f) => fs.readFileSync(path.join(DIR, f)));
const rounds = Number(process.argv[2] ?? 200);
const clock = new WallClock(nodeClock());
const resource = resourceFromAttributes({ 'service.name': 'bench' });

function once(withSpans: boolean): { events: number; spans: number; ns: bigint } {
  let spans = 0;
  let events = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    for (const d of data) {
      const c = new Correlator((ex) => {
        if (withSpans) buildSpan(ex, resource, clock);
        spans++;
      });
      events += forEachRecord(d, (b, v, o, l) => c.push(decodeEvent(b, v, o, l)));
      c.flush();
    }
  }
  return { events, spans, ns: process.hrtime.bigint() - t0 };
}

once(true); // warm up
for (const [label, withSpans] of [['decode + correlate', false], ['decode + correlate + build spans', true]] as const) {
  const runs = [once(withSpans), once(withSpans), once(withSpans)];
  const rates = runs.map((r) => r.events / (Number(r.ns) / 1e9)).sort((a, b) => a - b);
  console.log(`${label}: ${runs[0].events} events (${runs[0].spans} exchanges) per run; median ${Math.round(rates[1]).toLocaleString('en')} events/s (min ${Math.round(rates[0]).toLocaleString('en')}, max ${Math.round(rates[2]).toLocaleString('en')})`);
}
