/**
 * `gearbox run --config FILE`: a YAML or JSON object whose keys are the long
 * option names, in kebab-case or camelCase (`idle-ms: 500` or `idleMs: 500`).
 * Precedence: command line > GEARBOX_* environment > config file > defaults.
 */
import fs from 'node:fs';

export class ConfigFileError extends Error {}

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function loadConfigFile(file: string, knownKeys: string[]): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigFileError(`cannot read config file ${file}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    // yaml is loaded only for a YAML file (a module less in memory otherwise).
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on demand, synchronously
    data = file.endsWith('.json') ? JSON.parse(text) : (require('yaml') as typeof import('yaml')).parse(text);
  } catch (e) {
    throw new ConfigFileError(`config file ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigFileError(`config file ${file} must hold an object of options`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    const key = camel(k);
    if (!knownKeys.includes(key)) throw new ConfigFileError(`config file ${file}: unknown option "${k}" (known: ${knownKeys.join(', ')})`);
    out[key] = Array.isArray(v) ? v.join(',') : v;
  }
  return out;
}
