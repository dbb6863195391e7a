/**
 * nginx configurations for the labs, tests and benchmarks: a foreground
 * nginx whose pid, logs and temp files all live in `dir`, with `http` holding
 * the given server blocks. Returns the config file's path.
 */
import fs from 'node:fs';
import path from 'node:path';

export function writeNginxConfig(dir: string, http: string, workers = 1, workerConnections = 1024): string {
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `worker_processes ${workers};
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile ${2 * workerConnections};
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
${http}
}
`,
  );
  return conf;
}

/** A server block proxying `listen` to `upstream` over kept-alive HTTP/1.1 connections. */
export function keepAliveProxy(listen: string, upstream: string): string {
  return `  upstream backend { server ${upstream}; keepalive 16; }
  server {
    listen ${listen};
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }`;
}
