import path from 'node:path';
import { parseArgs } from 'node:util';
import { startBackend } from './backend.ts';
import { defaultBackoff } from './backoff.ts';
import { defaultConfigDir } from './config-dir.ts';

/**
 * The console backend alone, for a browser (used by `npm start` when there is
 * no Electron binary, and by e2e). Prints one JSON line `{url, token}` on
 * stdout once listening; stops on SIGINT/SIGTERM.
 */
const { values } = parseArgs({
  options: {
    'config-dir': { type: 'string' },
    'renderer-dir': { type: 'string' },
    port: { type: 'string' },
    /** Longest wait between reconnect attempts to an agent, ms (default 30 s; e2e shortens it to see recoveries sooner). */
    'reconnect-max-ms': { type: 'string' },
  },
});

async function serve(): Promise<void> {
const backend = await startBackend({
  configDir: values['config-dir'] ? path.resolve(values['config-dir']) : defaultConfigDir(),
  rendererDir: path.resolve(values['renderer-dir'] ?? path.join(__dirname, '../../../out/renderer')),
  port: values.port ? Number(values.port) : 0,
  backoff: values['reconnect-max-ms'] ? { ...defaultBackoff, maxMs: Number(values['reconnect-max-ms']) } : undefined,
  log: (message) => console.error(message),
});
process.stdout.write(`${JSON.stringify({ url: backend.url, token: backend.token })}\n`);

const stop = () => {
  void backend.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
}

serve().catch((error: unknown) => {
  console.error(`console backend: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
