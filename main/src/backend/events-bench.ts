/**
 * How long the console backend takes to answer one session's events when the
 * agent's log is long: a real agent whose catalog holds EVENTS events (mostly
 * volume usage about other subjects, a few about session `orders` and flash
 * session `nightly`), a real backend paired with it, and the median time of
 * GET /api/sites/:id/sessions/orders/events and .../flash-sessions/nightly/events.
 *
 *   node --import tsx main/src/backend/events-bench.ts [EVENTS=10000] [ROUNDS=20]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { initAgent, pairingToken, startAgent } from '../../../scripts/lib/agents.mjs';
import { Catalog } from '../../../agents/src/storage/catalog.ts';
import { startBackend } from './backend.ts';

const total = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 20);

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-events-bench-'));
  const dataDir = path.join(dir, 'agent');
  try {
    await initAgent({ dataDir, site: 'bench' });
    // Fill the log before the agent starts: one event in 500 is about `orders`, one in 500 about `nightly`, one in 1000 a flash progress tick.
    const catalog = new Catalog(path.join(dataDir, 'catalog.db'));
    catalog.db.transaction(() => {
      for (let index = 0; index < total; index++) {
        if (index % 500 === 0) catalog.recordEvent('session.state', 'info', 'orders', `orders is state ${index}`);
        else if (index % 500 === 250) catalog.recordEvent('flash.state', 'info', 'nightly', `nightly is state ${index}`);
        else if (index % 1000 === 1) catalog.recordEvent('flash.copy-progress', 'info', 'nightly', `nightly copied ${index}`);
        else catalog.recordEvent('volume.usage', 'info', `vol${index % 64}`, `vol${index % 64} uses ${index} bytes`, { allocatedBytes: index * 4096 });
      }
    })();
    catalog.close();

    const agent = await startAgent({ dataDir });
    const backend = await startBackend({ configDir: path.join(dir, 'console'), rendererDir: path.join(dir, 'none') });
    try {
      const call = async (method: string, route: string, body?: unknown) => {
        const response = await fetch(`${backend.url}${route}`, {
          method,
          headers: { authorization: `Bearer ${backend.token}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
        return (await response.json()) as Record<string, unknown>;
      };
      const { token, certificateFingerprint } = await pairingToken(dataDir);
      const site = await call('POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint });
      const base = `/api/sites/${String(site.id)}`;
      const measure = async (route: string) => {
        const times: number[] = [];
        let listed: Array<{ id: number }> = [];
        for (let round = 0; round < rounds + 2; round++) {
          const started = performance.now();
          const answer = await call('GET', route);
          if (round >= 2) times.push(performance.now() - started); // two warm-up rounds
          listed = answer.events as Array<{ id: number }>;
        }
        times.sort((a, b) => a - b);
        const median = times[Math.floor(times.length / 2)];
        console.log(`${route}: ${listed.length} events (newest id ${listed.at(-1)?.id ?? '-'}), median ${median.toFixed(1)} ms, min ${times[0].toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms (${rounds} rounds, ${total} events in the log)`);
      };
      await measure(`${base}/sessions/orders/events`);
      await measure(`${base}/flash-sessions/nightly/events`);
    } finally {
      await backend.close();
      await agent.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
