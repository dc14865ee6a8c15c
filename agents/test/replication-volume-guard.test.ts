import { afterEach, describe, expect, it } from 'vitest';
import { isProblemError } from '@tandem/contract';
import { startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

/**
 * A volume in a copy set (either side, any session state) is neither deleted
 * nor resized: the refusal names the session and the step to take first,
 * and nothing changes. Once the copy set is gone, the volume is free again.
 */

const MiB = 1024 * 1024;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

async function refusal(work: Promise<unknown>): Promise<{ problem: string; message: string; detail?: Record<string, unknown> }> {
  try {
    await work;
  } catch (error) {
    if (isProblemError(error)) return { problem: error.problem, message: error.message, detail: error.detail };
    throw error;
  }
  throw new Error('the operation was not refused');
}

describe('volumes in copy sets', () => {
  it('refuses deleting or resizing either volume of a copy set, naming the session and the step first; frees it once removed', async () => {
    sites = await startTwoSites();
    const s = sites;
    await s.h1.engine.createVolume('prod', 8 * MiB);
    await s.h2.engine.createVolume('copy', 8 * MiB);
    const service = s.h1.replication.service;
    await service.createSession('gold', 'sync', 'beta');
    await service.addPair('gold', 'prod', 'copy');

    // Defined: both sides are already guarded.
    const defined = await refusal(s.h2.engine.deleteVolume('copy'));
    expect(defined.problem).toBe('volume-busy');
    expect(defined.message).toMatch(/copy is the secondary \(H2\) volume of copy set prod -> copy in session gold \(defined\)/);
    expect(defined.message).toMatch(/tandem-agent session remove gold prod/);
    expect(defined.detail).toMatchObject({ dependents: [{ kind: 'copy-set', session: 'gold', role: 'h2', h1Volume: 'prod', h2Volume: 'copy' }] });

    await service.act('gold', 'start');
    await waitFor(() => service.session('gold').state === 'prepared', 30_000, 'prepared');
    for (const [site, volume, role] of [
      [s.h1, 'prod', 'primary'],
      [s.h2, 'copy', 'secondary'],
    ] as const) {
      const deleted = await refusal(site.engine.deleteVolume(volume));
      expect(deleted.problem).toBe('volume-busy');
      expect(deleted.message).toMatch(new RegExp(`${volume} is the ${role} .* in session gold \\((preparing|prepared)\\)`));
      expect(deleted.message).toMatch(/terminate gold/);
      const grown = await refusal(site.engine.resizeVolume(volume, 16 * MiB));
      expect(grown.problem).toBe('volume-busy');
      expect(grown.message).toMatch(/both volumes of a copy set keep one size/);
      expect(site.engine.getVolume(volume).sizeBytes).toBe(8 * MiB);
    }
    // Nothing changed: still mirroring.
    await s.h1.replication.exports.openExport('prod').write(0, Buffer.alloc(4096, 7));
    expect(service.session('gold').state).toBe('prepared');

    await service.act('gold', 'terminate');
    await waitFor(() => s.h2.replication.service.session('gold').state === 'defined', 10_000, 'terminated at the secondary');
    expect((await refusal(s.h1.engine.deleteVolume('prod'))).problem).toBe('volume-busy');
    await service.removePair('gold', 'prod');
    await waitFor(() => s.h2.replication.service.pairsOf(s.h2.replication.service.session('gold')).length === 0, 10_000, 'removed at the secondary');
    await s.h1.engine.deleteVolume('prod');
    await s.h2.engine.resizeVolume('copy', 16 * MiB);
    await s.h2.engine.deleteVolume('copy');
  }, 90_000);
});
