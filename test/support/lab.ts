export { Lab, requireRootLab, CGROUP2_ROOT, type Host } from '../../src/lab/namespace-lab';
