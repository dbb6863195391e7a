/**
 * Fidelity scenarios: service topologies on namespace hosts h1..h4. h1 always
 * runs the load generator ("client"); each scenario starts its services and
 * returns the address the load goes to.
 */
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { Lab, type Host } from '../src/lab/namespace-lab';
import { keepAliveProxy, writeNginxConfig } from '../src/lab/nginx-config';

export const SERVICES = path.resolve(__dirname, '..', '..', 'fidelity', 'services');

export interface ScenarioEnv {
  lab: Lab;
  hosts: Host[];
}

export interface Scenario {
  id: string;
  title: string;
  /** Services that forward the path unchanged between client and handler. */
  proxies: string[];
  /** Services and client connections are set up before the agents start. */
  preexisting?: boolean;
  /** Load generator in fidelity/services (default load.js). */
  client?: string;
  start(env: ScenarioEnv): Promise<string>;
}

function waitForPort(host: Host, port: number, timeoutMs = 10_000): Promise<void> {
  const script = `for i in $(seq 1 ${Math.ceil(timeoutMs / 50)}); do (echo > /dev/tcp/${host.ip}/${port}) 2>/dev/null && exit 0; sleep 0.05; done; exit 1`;
  return new Promise((resolve, reject) =>
    execFile('ip', ['netns', 'exec', host.ns, 'bash', '-c', script], (err) =>
      err ? reject(new Error(`${host.name}:${port} never accepted connections`)) : resolve(),
    ),
  );
}

async function redis(env: ScenarioEnv, host: Host): Promise<string> {
  const p = env.lab.spawnIn(host, `redis-${host.name}`, 'redis-server', [
    '--port',
    '6379',
    '--bind',
    host.ip,
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'no',
  ]);
  await Lab.waitFor(p, /Ready to accept connections/, 10_000, `redis on ${host.name}`);
  return `${host.ip}:6379`;
}

async function py(env: ScenarioEnv, host: Host, name: string, port: number, vars: Record<string, string>): Promise<string> {
  const p = env.lab.spawnIn(host, `svc-${name}`, 'python3', ['-u', path.join(SERVICES, 'py_service.py')], {
    OTEL_SERVICE_NAME: name,
    NAME: name,
    PORT: String(port),
    ...vars,
  });
  await Lab.waitFor(p, /ready on/, 10_000, `${name} (python)`);
  return `${host.ip}:${port}`;
}

async function node(env: ScenarioEnv, host: Host, name: string, port: number, vars: Record<string, string>): Promise<string> {
  const p = env.lab.spawnIn(host, `svc-${name}`, process.execPath, [path.join(SERVICES, 'node_service.js')], {
    OTEL_SERVICE_NAME: name,
    NAME: name,
    PORT: String(port),
    ...vars,
  });
  await Lab.waitFor(p, /ready on/, 10_000, `${name} (node)`);
  return `${host.ip}:${port}`;
}

/** JavaService.java compiled once per lab into its log folder; the folder (the class path). */
function javaClasses(env: ScenarioEnv): string {
  const dir = path.join(env.lab.logDir, 'java-classes');
  execFileSync('javac', ['-d', dir, path.join(SERVICES, 'JavaService.java')]);
  return dir;
}

async function java(env: ScenarioEnv, host: Host, name: string, port: number, vars: Record<string, string>): Promise<string> {
  const p = env.lab.spawnIn(host, `svc-${name}`, 'java', ['-cp', javaClasses(env), 'JavaService'], {
    OTEL_SERVICE_NAME: name,
    NAME: name,
    PORT: String(port),
    ...vars,
  });
  await Lab.waitFor(p, /ready on/, 30_000, `${name} (java)`);
  return `${host.ip}:${port}`;
}

async function nginx(env: ScenarioEnv, host: Host, port: number, upstream: string): Promise<string> {
  const dir = path.join(env.lab.logDir, `nginx-${host.name}`);
  const conf = writeNginxConfig(dir, keepAliveProxy(`${host.ip}:${port}`, upstream), 2);
  env.lab.spawnIn(host, `nginx-${host.name}`, 'nginx', ['-c', conf, '-p', dir]);
  await waitForPort(host, port);
  return `${host.ip}:${port}`;
}

export const SCENARIOS: Scenario[] = [
  {
    id: 'threads-new-conn',
    title: '1a. thread-per-request HTTP (Python) -> HTTP over new connections -> Redis',
    proxies: [],
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const r = await redis(env, h4);
      const b = await py(env, h3, 'b', 8080, { REDIS: r });
      return py(env, h2, 'a', 8080, { DOWNSTREAMS: b, MODE: 'new' });
    },
  },
  {
    id: 'threads-keepalive-pool',
    title: '1b. thread-per-request HTTP (Python) -> HTTP over a keep-alive pool -> Redis',
    proxies: [],
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const r = await redis(env, h4);
      const b = await py(env, h3, 'b', 8080, { REDIS: r });
      return py(env, h2, 'a', 8080, { DOWNSTREAMS: b, MODE: 'pool' });
    },
  },
  {
    id: 'nginx-upstream-keepalive',
    title: '2. nginx (2 workers, upstream keepalive) -> HTTP (Python) -> Redis',
    proxies: ['nginx'],
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const r = await redis(env, h4);
      const b = await py(env, h3, 'b', 8080, { REDIS: r });
      return nginx(env, h2, 8080, b);
    },
  },
  {
    id: 'event-loop-keepalive',
    title: '3. event loop (Node.js http, keep-alive agent) -> HTTP (Python) -> Redis',
    proxies: [],
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const r = await redis(env, h4);
      const b = await py(env, h3, 'b', 8080, { REDIS: r });
      return node(env, h2, 'a', 8080, { DOWNSTREAMS: b, MODE: 'sequential' });
    },
  },
  {
    id: 'event-loop-small-pool',
    title: '3b. event loop (Node.js http) with a pool of 2 keep-alive sockets: requests queue for a socket',
    proxies: [],
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const r = await redis(env, h4);
      const b = await py(env, h3, 'b', 8080, { REDIS: r });
      return node(env, h2, 'a', 8080, { DOWNSTREAMS: b, MODE: 'sequential', MAX_SOCKETS: '2' });
    },
  },
  {
    id: 'long-responses',
    title: '5a. long responses: 200 kB bodies split over many segments and reads, keep-alive pool',
    proxies: [],
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const r = await redis(env, h4);
      const b = await py(env, h3, 'b', 8080, { REDIS: r, BODY_BYTES: '200000' });
      return py(env, h2, 'a', 8080, { DOWNSTREAMS: b, MODE: 'pool', BODY_BYTES: '100000' });
    },
  },
  {
    id: 'pipelined-requests',
    title: '5b. HTTP/1.1 pipelining: two requests per write on each client connection',
    proxies: [],
    client: 'pipeline-load.js',
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const r = await redis(env, h4);
      const b = await py(env, h3, 'b', 8080, { REDIS: r });
      return py(env, h2, 'a', 8080, { DOWNSTREAMS: b, MODE: 'pool' });
    },
  },
  {
    id: 'preexisting-connections',
    title: '6. connections opened before the agent started (client keep-alive and service pool)',
    proxies: [],
    preexisting: true,
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const r = await redis(env, h4);
      const b = await py(env, h3, 'b', 8080, { REDIS: r });
      return py(env, h2, 'a', 8080, { DOWNSTREAMS: b, MODE: 'pool' });
    },
  },
  {
    id: 'fanout-threads',
    title: '4a. fan-out: Python handler calls three downstreams in parallel threads',
    proxies: [],
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const ds = [await py(env, h3, 'b', 8081, {}), await py(env, h3, 'c', 8082, {}), await py(env, h4, 'd', 8083, {})];
      return py(env, h2, 'a', 8080, { DOWNSTREAMS: ds.join(','), MODE: 'fanout' });
    },
  },
  {
    id: 'fanout-event-loop',
    title: '4b. fan-out: Node.js handler calls three downstreams in parallel (Promise.all)',
    proxies: [],
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const ds = [await py(env, h3, 'b', 8081, {}), await py(env, h3, 'c', 8082, {}), await py(env, h4, 'd', 8083, {})];
      return node(env, h2, 'a', 8080, { DOWNSTREAMS: ds.join(','), MODE: 'fanout' });
    },
  },
  ...(['httpclient', 'httpclient-async', 'urlconnection'] as const).map((client, i): Scenario => ({
    id: `java-${client}`,
    title: `7${'abc'[i]}. Java 17 HttpServer (fixed thread pool) -> ${{ httpclient: 'HttpClient.send()', 'httpclient-async': 'HttpClient.sendAsync().join()', urlconnection: 'HttpURLConnection' }[client]} -> HTTP (Python) -> Redis`,
    proxies: [],
    async start(env) {
      const [, h2, h3, h4] = env.hosts;
      const r = await redis(env, h4);
      const b = await py(env, h3, 'b', 8080, { REDIS: r });
      return java(env, h2, 'a', 8080, { DOWNSTREAMS: b, CLIENT: client });
    },
  })),
];
