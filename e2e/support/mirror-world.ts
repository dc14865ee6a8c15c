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
export async function startMirrorWorld(options: SitesWorldOptions = {}): Promise<MirrorWorld> {
  const world = await startSitesWorld(['primary', 'secondary'], options);
  const { primary, secondary } = world.agents;
  return { dir: world.dir, primary, secondary, backend: world.backend, siteIds: { primary: world.siteIds.primary, secondary: world.siteIds.secondary }, stop: world.stop };
}

/** Agents of the given site names and a console backend of one spec's own, every site connected to the console (not paired with each other). */
export interface SitesWorld {
  dir: string;
  agents: Record<string, RunningAgent>;
  backend: RunningConsoleBackend;
  siteIds: Record<string, string>;
  stop(): Promise<void>;
}

export interface SitesWorldOptions {
  /** The backend's longest wait between reconnects to an agent (ms): specs that restart agents see the console recover sooner. */
  reconnectMaxMs?: number;
  /** Extra environment for every agent (e.g. TANDEM_ALERT_INTERVAL_MS: alerts evaluated more often). */
  agentEnv?: Record<string, string>;
}

export async function startSitesWorld(sites: string[], options: SitesWorldOptions = {}): Promise<SitesWorld> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-e2e-mirror-'));
  for (const site of sites) await initAgent({ dataDir: path.join(dir, site), site });
  const started = await Promise.all(sites.map((site) => startAgent({ dataDir: path.join(dir, site), env: options.agentEnv })));
  const agents = Object.fromEntries(sites.map((site, index) => [site, started[index]]));
  const backend = await startConsoleBackend({ configDir: path.join(dir, 'console'), reconnectMaxMs: options.reconnectMaxMs });
  const siteIds: Record<string, string> = {};
  for (const site of sites) {
    const { token, certificateFingerprint } = await pairingToken(agents[site].dataDir);
    siteIds[site] = ((await consoleApi(backend, 'POST', '/api/sites', { address: agents[site].apiAddress, token, expectedFingerprint: certificateFingerprint })) as { id: string }).id;
  }
  return {
    dir,
    agents,
    backend,
    siteIds,
    async stop() {
      await backend.stop();
      await Promise.all(started.map((agent) => agent.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
