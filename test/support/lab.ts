import path from 'node:path';
import { Lab, type Host } from '../../src/lab/namespace-lab';
import { writeNginxConfig } from '../../src/lab/nginx-config';

export { Lab, requireRootLab, CGROUP2_ROOT, type Host } from '../../src/lab/namespace-lab';

/**
 * nginx on `host` with the given server blocks, its files in the lab's log
 * folder under `label`; resolves once it has stayed up 300 ms, rejects with
 * its log if it exited.
 */
export async function startNginx(lab: Lab, host: Host, label: string, serverBlocks: string, workerConnections?: number): Promise<void> {
  const dir = path.join(lab.logDir, label);
  const conf = writeNginxConfig(dir, serverBlocks, 1, workerConnections);
  const nginx = lab.spawnIn(host, label, 'nginx', ['-c', conf, '-p', dir]);
  await new Promise((r) => setTimeout(r, 300));
  if (nginx.exitCode !== null) throw new Error(`nginx did not start: ${lab.logOf(label)}`);
}
