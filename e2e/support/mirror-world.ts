import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { initAgent, pairingToken, startAgent, type RunningAgent } from '../../scripts/lib/agents.mjs';
import { consoleApi, startConsoleBackend, type RunningConsoleBackend } from '../../scripts/lib/backend.mjs';

/** Two agents and a console backend of one spec's own, with both sites connected to the console. */
export interface MirrorWorld {
  dir: string;
  primary: RunningAgent;
  secondary: RunningAgent;
  backend: RunningConsoleBackend;
  siteIds: { primary: string; secondary: string };
  stop(): Promise<void>;
}

/**
 * Mirroring leaves sessions, peer pairings and volumes at both agents, which
 * the shared worker world's specs (sites, volumes) expect to find empty; so
 * the sessions spec runs against agents of its own.
 */
export async function startMirrorWorld(): Promise<MirrorWorld> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-e2e-mirror-'));
  await initAgent({ dataDir: path.join(dir, 'primary'), site: 'primary' });
  await initAgent({ dataDir: path.join(dir, 'secondary'), site: 'secondary' });
  const [primary, secondary] = await Promise.all([startAgent({ dataDir: path.join(dir, 'primary') }), startAgent({ dataDir: path.join(dir, 'secondary') })]);
  const backend = await startConsoleBackend({ configDir: path.join(dir, 'console') });
  const connect = async (agent: RunningAgent): Promise<string> => {
    const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
    const site = (await consoleApi(backend, 'POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint })) as { id: string };
    return site.id;
  };
  const siteIds = { primary: await connect(primary), secondary: await connect(secondary) };
  return {
    dir,
    primary,
    secondary,
    backend,
    siteIds,
    async stop() {
      await backend.stop();
      await Promise.all([primary.stop(), secondary.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
