import { randomBytes } from 'node:crypto';
import type { FailbackPreflight } from '@tandem/contract';
import { afterEach, describe, expect, it } from 'vitest';
import { failedBackMultiPrimary, preparedMultiPrimary, startThreeSites, type ThreeSites } from './helpers/multi-primary-sites.ts';

const MiB = 1024 * 1024;

let sites: ThreeSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

/** The counts of a preflight, per copy set (what must not depend on where it was asked). */
const counts = (preflight: FailbackPreflight) => ({
  pairs: preflight.pairs.map((pair) => [pair.h1Volume, pair.primarySite ?? null, pair.candidateTracks, pair.tracksToCopy ?? null] as const).sort(),
  total: preflight.tracksToCopy,
});

/**
 * A failback preflight is computed where the failback would run (the target
 * of the current direction), whichever agent of a multi-primary session is
 * asked: the control agent (alpha), the member (bravo) or the secondary
 * (charlie), in both directions. On the way back the member, recovered by its
 * control agent, is writable and tracks its writes, and they are planned.
 */
describe('the failback preflight of a multi-primary session, asked at any agent', () => {
  it('is the same at the control agent, the member and the secondary, H1->H2 recovered at the secondary and H2->H1 recovered at H1', async () => {
    sites = await startThreeSites();
    const s = sites;
    const alpha = s.alpha.replication.service;
    const bravo = s.bravo.replication.service;
    const charlie = s.charlie.replication.service;
    const options = { verifyCodes: true, fullCompare: false };

    // H1->H2, recovered at charlie: the failback runs at charlie.
    await preparedMultiPrimary(s);
    await charlie.act('mp', 'recover');
    await s.charlie.replication.exports.openExport('b2').write(MiB, randomBytes(MiB));
    const atCharlie = counts(await charlie.preflight('mp', options));
    expect(atCharlie.total).toBeGreaterThan(0);
    expect(counts(await alpha.preflight('mp', options))).toEqual(atCharlie);
    expect(counts(await bravo.preflight('mp', options))).toEqual(atCharlie);
    await s.close();

    // H2->H1 after a failback, recovered at alpha: every primary agent is writable; the way back runs at alpha.
    sites = await startThreeSites();
    const t = sites;
    await failedBackMultiPrimary(t);
    const [alpha2, bravo2, charlie2] = [t.alpha, t.bravo, t.charlie].map((site) => site.replication.service);
    await alpha2.act('mp', 'recover');
    expect(bravo2.session('mp').state).toBe('target-available');
    await t.bravo.replication.exports.openExport('b').write(9 * MiB, randomBytes(MiB));
    const atAlpha = counts(await alpha2.preflight('mp', options));
    const planB = atAlpha.pairs.find(([volume]) => volume === 'b')!;
    expect(planB[2], 'the member tracked its write after the recover').toBeGreaterThanOrEqual(MiB / t.bravo.engine.trackSize);
    expect(counts(await bravo2.preflight('mp', options))).toEqual(atAlpha);
    expect(counts(await charlie2.preflight('mp', options))).toEqual(atAlpha);
  }, 240_000);
});
