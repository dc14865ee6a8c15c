import { randomBytes } from 'node:crypto';
import { ProblemError } from '@tandem/contract';
import { afterEach, describe, expect, it } from 'vitest';
import { failedBackMultiPrimary, startThreeSites, type ThreeSites } from './helpers/multi-primary-sites.ts';
import { readAll, waitFor } from './helpers/replication-sites.ts';

const MiB = 1024 * 1024;

let sites: ThreeSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

/**
 * The way back of a multi-primary session (alpha the control agent with a, bravo a
 * member with b, charlie the secondary, mirrored H2->H1 after a failback,
 * recovered at alpha): a Start H1->H2 that marked the members' tracks but
 * could not make charlie the target is asked again and succeeds; writes at
 * both H1 agents between the two attempts are copied too.
 */
describe('the way back of a multi-primary session, asked again', () => {
  it('after charlie refused the target role: members that already marked plan again, the retry runs and every site ends identical', async () => {
    sites = await startThreeSites();
    const s = sites;
    const controlAgent = s.alpha.replication.service;
    const charlie = s.charlie.replication.service;
    const bravo = s.bravo.replication.service;
    await failedBackMultiPrimary(s);

    // Back at H1: recovered at alpha, production writes at both primary agents.
    await controlAgent.act('mp', 'recover');
    await s.alpha.replication.exports.openExport('a').write(8 * MiB, randomBytes(MiB));
    await s.bravo.replication.exports.openExport('b').write(9 * MiB, randomBytes(MiB));

    // Start H1->H2: bravo marks its plan and turns H1->H2, then charlie fails to take the target role (injected once).
    const becomeTarget = charlie.failback.becomeTarget.bind(charlie.failback);
    charlie.failback.becomeTarget = async () => {
      charlie.failback.becomeTarget = becomeTarget;
      throw new ProblemError('internal-error', 'injected: charlie does not take the target role');
    };
    await expect(controlAgent.act('mp', 'failback')).rejects.toThrow(/injected/);
    expect(controlAgent.session('mp').state).toBe('target-available');
    expect([bravo.session('mp').state, bravo.session('mp').direction]).toEqual(['suspended', 'h1-h2']);

    // Writes between the attempts, at both agents: tracked and copied by the retry.
    await s.alpha.replication.exports.openExport('a').write(12 * MiB, randomBytes(MiB));
    await s.bravo.replication.exports.openExport('b').write(13 * MiB, randomBytes(MiB));
    const preflight = await controlAgent.preflight('mp', { verifyCodes: true, fullCompare: false });
    expect(preflight.pairs.map((pair) => pair.h1Volume).sort()).toEqual(['a', 'b']);
    // alpha (still target-available) tracks the write after the failed attempt as changed; its first plan stays marked.
    const planA = preflight.pairs.find((pair) => pair.h1Volume === 'a')!;
    expect(planA.targetChangedTracks, 'alpha tracks writes after the failed attempt').toBe(MiB / s.alpha.engine.trackSize);
    expect(planA.tracksToCopy).toBeGreaterThan(planA.targetChangedTracks);

    await controlAgent.act('mp', 'failback');
    await waitFor(() => controlAgent.session('mp').state === 'prepared' && controlAgent.session('mp').direction === 'h1-h2', 60_000, 'prepared H1->H2 again');
    const same = async () =>
      (await readAll(s.alpha, 'a')).equals(await readAll(s.charlie, 'a2')) && (await readAll(s.bravo, 'b')).equals(await readAll(s.charlie, 'b2'));
    const deadline = Date.now() + 60_000;
    while (!(await same()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await same(), 'a == a2 and b == b2').toBe(true);
  }, 180_000);
});
