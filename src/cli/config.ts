/**
 * Reads the standard OTEL_* variables Gearbox applies itself (the exporter
 * and the batch processor read theirs directly).
 */
export function sampleRatioFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const sampler = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const arg = env.OTEL_TRACES_SAMPLER_ARG;
  switch (sampler) {
    case 'always_on':
    case 'parentbased_always_on':
      return 1;
    case 'always_off':
    case 'parentbased_always_off':
      return 0;
    case 'traceidratio':
    case 'parentbased_traceidratio': {
      const r = arg === undefined ? 1 : Number(arg);
      if (!Number.isFinite(r) || r < 0 || r > 1) throw new Error(`OTEL_TRACES_SAMPLER_ARG must be a number in [0, 1], got ${JSON.stringify(arg)}`);
      return r;
    }
    default:
      throw new Error(`OTEL_TRACES_SAMPLER=${sampler} is not supported (use always_on, always_off, traceidratio or parentbased_*)`);
  }
}

/** OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value, values percent-decoded. */
export function resourceAttributesFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = env.OTEL_RESOURCE_ATTRIBUTES;
  if (!raw) return out;
  for (const pair of raw.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim();
    try {
      out[key] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      out[key] = pair.slice(eq + 1).trim();
    }
  }
  return out;
}
