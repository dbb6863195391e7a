/** The agent's spans for every recording in test/fixtures/recorded, each given one of `resources` (by pid). */
import fs from 'node:fs';
import path from 'node:path';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { buildSpans } from '../../src/export/span-builder';
import { WallClock, nodeClock } from '../../src/export/clock';
import { EventView } from '../../src/events/decoder';
import { forEachRecord } from '../../src/events/replay';
import { Correlator } from '../../src/trace/correlator';

const DIR = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'recorded');

export function recordedSpans(resources: Resource[]): ReadableSpan[] {
  const clock = new WallClock(nodeClock());
  const spans: ReadableSpan[] = [];
  const view = new EventView();
  for (const f of fs.readdirSync(DIR).filter((n) => n.endsWith('.events'))) {
    const c = new Correlator((ex) => {
      for (const s of buildSpans(ex, resources[ex.request.pid % resources.length], clock)) spans.push(s);
    });
    forEachRecord(fs.readFileSync(path.join(DIR, f)), (b, v, o, l) => c.push(view.load(b, v, o, l)));
    c.flush();
  }
  return spans;
}
