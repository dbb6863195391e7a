/**
 * A count-only OTLP/gRPC receiver in its own process, so that decoding what
 * the agent exports does not share the agent's core in a benchmark. Prints
 * its endpoint, then answers "count" on stdin with the spans received.
 */
import readline from 'node:readline';
import { OtlpReceiver } from '../test/support/otlp-receiver';

async function main(): Promise<void> {
  const r = new OtlpReceiver(false);
  await r.start();
  console.log(r.endpoint);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (l) => {
    if (l.trim() === 'count') console.log(String(r.spanCount));
  });
  rl.on('close', () => void r.stop().then(() => process.exit(0)));
}

void main();
