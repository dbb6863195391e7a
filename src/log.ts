import pino from 'pino';

/** The agent's logger: pino JSON on stdout. Level from GEARBOX_LOG_LEVEL (default info). */
export const log = pino({
  name: 'gearbox',
  level: process.env.GEARBOX_LOG_LEVEL ?? 'info',
  base: { pid: process.pid },
});

export type Logger = typeof log;
