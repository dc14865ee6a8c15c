import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { preparedMultiPrimary as prepared, secondPrimary, startThreeSites, type Primaries, type ThreeSites } from './helpers/multi-primary-sites.ts';
import { readAll, waitFor } from './helpers/replication-sites.ts';
import { StampedWriter } from './helpers/stamped-writer.ts';

const MiB = 1024 * 1024;
const TRACK = 65536;

let sites: ThreeSites | null = null;
let writer: StampedWriter | null = null;
let releaseCommits: (() => void) | null = null;
afterEach(async () => {
  releaseCommits?.();
  releaseCommits = null;
  await writer?.stop();
  writer = null;
  await sites?.close();
  sites = null;
});

describe.each([1, 2] as const)('recover (failover) of an async session with %i primary agent(s) at its secondary site', (primaries: Primaries) => {
  /** The session's sites: alpha (the control agent), bravo (with two primary agents), charlie. */
  const siteNames = primaries === 2 ? (['alpha', 'bravo', 'charlie'] as const) : (['alpha', 'charlie'] as const);
  const states = (s: ThreeSites): Record<string, string> =>
    Object.fromEntries(siteNames.map((site) => [site, s[site].replication.service.session('mp').state]));
  const everywhere = (state: string) => Object.fromEntries(siteNames.map((site) => [site, state]));

  it('every site shows target-available once the recover returns: charlie is writable, b\'s primary agent stops shipping and keeps marking', async () => {
    sites = await startThreeSites();
    const s = sites;
    await prepared(s, primaries);
    const charlie = s.charlie.replication.service;
    await charlie.act('mp', 'recover');
    expect(states(s)).toEqual(everywhere('target-available'));
    for (const site of siteNames.filter((name) => name !== 'charlie')) expect(s[site].replication.service.session('mp').direction).toBe('h1-h2');

    // Writable at charlie at once (no wait after the recover returned).
    const written = randomBytes(2 * TRACK);
    await s.charlie.replication.exports.openExport('b2').write(MiB, written);
    expect((await readAll(s.charlie, 'b2')).subarray(MiB, MiB + written.length).equals(written)).toBe(true);

    // b's primary agent (the member, or the control agent): no shipping to charlie any more, what changes at b is marked for the failback.
    const holder = secondPrimary(s, primaries);
    const bravo = holder.replication.service;
    const pair = bravo.pairsOf(bravo.session('mp')).find((each) => each.h1Volume === 'b')!;
    const source = bravo.sourceOf(pair)!;
    expect(source.mirroring).toBe(false);
    const marked = source.outOfSyncTracks;
    const b2Before = await readAll(s.charlie, 'b2');
    await holder.replication.exports.openExport('b').write(8 * MiB, randomBytes(3 * TRACK));
    expect(source.outOfSyncTracks).toBe(marked + 3);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await readAll(s.charlie, 'b2')).equals(b2Before)).toBe(true);

    // The console lists that agent's own view: target-available, its copy set too.
    const info = bravo.info(bravo.session('mp'));
    expect(info.state).toBe('target-available');
    // And it stays so (no late report of another site changes it).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(states(s)).toEqual(everywhere('target-available'));
  }, 120_000);

  it('rounds failing at charlie while it recovers (their parts refused) neither make it a target again nor resume mirroring', async () => {
    sites = await startThreeSites();
    const s = sites;
    await prepared(s, primaries);
    writer = new StampedWriter(TRACK);
    writer.start({ a: s.alpha.engine.device('a'), b: secondPrimary(s, primaries).engine.device('b') }, { stampIntervalMs: 5 });
    const charlie = s.charlie.replication.service;
    const alpha = s.alpha.replication.service;
    // The control agent learns of the recover late: meanwhile charlie (recovering) refuses the primary agents' parts, their
    // rounds fail, and the control agent suspends and would resume once the links are up.
    s.alpha.faults.holdStopSource = new Promise<void>((resolve) => (releaseCommits = resolve));
    const since = new Date().toISOString();
    const recover = charlie.act('mp', 'recover');
    await waitFor(() => charlie.session('mp').state !== 'prepared', 30_000, 'recovering at charlie');
    // The race this test is about: a round failed at charlie and the control agent suspended for it (a state, not a time).
    await waitFor(
      () =>
        s.alpha.engine.catalog
          .listEvents(0, 5000, { subject: 'mp' })
          .some((event) => event.type === 'session.state' && event.time >= since && / -> suspend(ing|ed)/.test(event.message)),
      30_000,
      'the control agent suspended for a round charlie refused',
    );
    releaseCommits!();
    releaseCommits = null;
    await recover;
    const recovered = new Date().toISOString();
    expect(states(s)).toEqual(everywhere('target-available'));
    // Nothing resumes mirroring afterwards (a suspend for the failed round would resume once the link is back).
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(states(s)).toEqual(everywhere('target-available'));
    // `since` was read before the recover began, so its events may share its millisecond (>=); `recovered` after it returned (>).
    const transitions = (site: 'alpha' | 'bravo' | 'charlie', after: string, inclusive = false) =>
      s[site].engine.catalog
        .listEvents(0, 5000, { subject: 'mp' })
        .filter((event) => event.type === 'session.state' && (inclusive ? event.time >= after : event.time > after))
        .map((event) => / -> ([a-z-]+)/.exec(event.message)![1]);
    // Charlie went straight from prepared to recovering to target-available: the control agent's reports meanwhile (it
    // suspended and resumed, not knowing of the recover yet) did not make it a target again.
    expect(transitions('charlie', since, true)).toEqual(['recovering', 'target-available']);
    // Once recovered nothing runs again anywhere.
    for (const site of siteNames) expect({ site, after: transitions(site, recovered) }).toEqual({ site, after: [] });
    await s.charlie.replication.exports.openExport('a2').write(0, randomBytes(TRACK));
    await writer.stop();
    writer = null;
    const pair = alpha.pairsOf(alpha.session('mp'))[0];
    expect(alpha.sourceOf(pair)!.mirroring).toBe(false);
  }, 120_000);
});
