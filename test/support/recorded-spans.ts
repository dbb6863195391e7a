/** The agent's spans and exchanges for every recording in test/fixtures/recorded; spans get one of `resources` (by pid). */
import fs from 'node:fs';
import path from 'node:path';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { buildSpans } from '../../src/export/span-builder';
import { WallClock, nodeClock } from '../../src/events/clock';
import { EventView } from '../../src/events/decoder';
import { forEachRecord } from '../../src/events/replay';
import { Correlator, type Exchange } from '../../src/trace/correlator';

const DIR = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'recorded');

export function recordedSpans(resources: Resource[]): ReadableSpan[] {
  const clock = new WallClock(nodeClock());
  return recordedExchanges().flatMap((ex) => buildSpans(ex, resources[ex.request.pid % resources.length], clock));
}

/** The exchanges the correlator makes of every recording in test/fixtures/recorded. */
export function recordedExchanges(): Exchange[] {
  const exchanges: Exchange[] = [];
  const view = new EventView();
  for (const f of fs.readdirSync(DIR).filter((n) => n.endsWith('.events'))) {
    const c = new Correlator((ex) => exchanges.push(ex));
    forEachRecord(fs.readFileSync(path.join(DIR, f)), (b, v, o, l) => c.push(view.load(b, v, o, l)));
    c.flush();
  }
  return exchanges;
}
