import { randomBytes } from 'node:crypto';
import { ProblemError, type AgentEvent, type VerifyReport } from '@tandem/contract';
import { afterEach, describe, expect, it } from 'vitest';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

const TRACK = 65536;
const MiB = 1024 * 1024;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

const host = (s: TwoSites, site: 'h1' | 'h2', volume: string) => s[site].replication.exports.openExport(volume);

describe('failback verified by the agent', () => {
  it('verifies a failback by segment codes once it is Prepared, records the result at both sites; a request while it runs joins it, one during its repair resync gets its report, one during the failback copy is refused', async () => {
    sites = await startTwoSites();
    const s = sites;
    const h1 = s.h1.replication.service;
    const h2 = s.h2.replication.service;
    await s.h1.engine.createVolume('prod', 8 * MiB);
    await s.h2.engine.createVolume('copy', 8 * MiB);
    await h1.createSession('s1', 'sync', 'beta');
    await h1.addPair('s1', 'prod', 'copy');
    await host(s, 'h1', 'prod').write(0, randomBytes(8 * MiB));
    await h1.act('s1', 'start');
    await waitFor(() => h1.session('s1').state === 'prepared', 30_000, 'prepared');
    expect(h1.info(h1.session('s1')).lastVerify).toBeNull();

    await h2.act('s1', 'recover');
    for (const track of [10, 11]) await host(s, 'h2', 'copy').write(track * TRACK, randomBytes(TRACK));
    // A difference no bitmap knows of (written to the engine below the splitter at h1):
    // a failback by bitmaps and codes of changed tracks does not copy it; the verify by codes of every track finds it.
    await s.h1.engine.device('prod').write(30 * TRACK, Buffer.alloc(TRACK, 0x77));

    // Requests are pinned to the states they name, not to timing: each is issued from a listener on h2's
    // events, synchronously while the agent is in that state.
    const events = s.h2.engine.catalog.events;
    const whenEvent = <T>(match: (event: AgentEvent) => boolean, act: () => Promise<T>): Promise<Promise<T>> =>
      new Promise((resolve) => {
        const listener = (event: AgentEvent) => {
          if (event.subject !== 's1' || !match(event)) return;
          events.off('event', listener);
          resolve(act());
        };
        events.on('event', listener);
      });
    const isState = (to: string) => (event: AgentEvent) => event.type === 'session.state' && event.data?.to === to;
    // During the failback's own copy (Preparing, no verify's repair): refused.
    const duringCopy = whenEvent(isState('preparing'), () => h2.verify('s1').then(() => null, (error: unknown) => error));
    // At Prepared: the agent's own verify starts in the same tick; a request made then joins it.
    const atPrepared = whenEvent(isState('prepared'), () => new Promise<VerifyReport>((resolve, reject) => queueMicrotask(() => h2.verify('s1').then(resolve, reject))));
    // Once the verify has finished (its report answered), its repair resync is still copying (that needs the
    // link, so more than this tick): a request made then gets the verify's report, not invalid-state.
    let stateAtRequest = '';
    const duringRepair = whenEvent(
      (event) => event.type === 'session.verified',
      () =>
        h2.verify('s1').then(() => {
          stateAtRequest = h2.session('s1').state;
          return h2.verify('s1');
        }),
    );

    // The console's failback wizard: failback, then `session verify` once Prepared.
    await h2.act('s1', 'failback', { verifyCodes: true });
    const refused = await (await duringCopy);
    expect(refused).toBeInstanceOf(ProblemError);
    expect((refused as ProblemError).problem).toBe('invalid-state');
    expect((refused as ProblemError).message).toMatch(/is preparing; verify needs prepared/);

    // The agent verified by itself: the hidden difference was found, marked and copied.
    await waitFor(() => h2.session('s1').lastVerify != null, 30_000, 'verify recorded');
    const recorded = h2.info(h2.session('s1')).lastVerify!;
    expect(recorded.trigger).toBe('failback');
    expect(recorded.differingTracks).toBe(1);
    expect(recorded.ok).toBe(false);
    expect(recorded.resyncStarted).toBe(true);
    expect(recorded.comparedTracks).toBe(128);
    // The request made while it ran got the same verify, not a conflict.
    const joined = await (await atPrepared);
    expect(joined).toMatchObject({ startedAt: recorded.startedAt, differingTracks: 1, resyncStarted: true, comparedTracks: 128 });
    // The request made during its repair resync got its report, not invalid-state.
    const repairing = await (await duringRepair);
    expect(stateAtRequest).toBe('preparing');
    expect(repairing).toMatchObject({ startedAt: recorded.startedAt, differingTracks: 1, resyncStarted: true });
    expect(repairing.comparedTracks + repairing.unverifiedTracks).toBe(128);
    await waitFor(() => h2.session('s1').state === 'prepared' && h2.info(h2.session('s1')).pairs[0].outOfSyncTracks === 0, 30_000, 'resynced');
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);

    // Both sites show it; events say what happened.
    await waitFor(() => h1.info(h1.session('s1')).lastVerify?.startedAt === recorded.startedAt, 10_000, 'h1 knows the result');
    const verified = s.h2.engine.catalog.listEvents(0, 5000).filter((event) => event.type === 'session.verified');
    expect(verified).toHaveLength(1);
    expect(verified[0].data).toMatchObject({ trigger: 'failback', differingTracks: 1, ok: false });
    expect(verified[0].message).toMatch(/after failback/);

    // Once Prepared again, a request is a new verify; two issued in the same tick get one verify.
    const [again, twin] = await Promise.all([h2.verify('s1'), h2.verify('s1')]);
    expect(again.differingTracks).toBe(0);
    expect(again.startedAt).not.toBe(recorded.startedAt);
    expect(twin.startedAt).toBe(again.startedAt);
    // At the other site too (forwarded to the source).
    const [fromH1, fromH1Twin] = await Promise.all([h1.verify('s1'), h1.verify('s1')]);
    expect(fromH1.differingTracks).toBe(0);
    expect(fromH1Twin.startedAt).toBe(fromH1.startedAt);
    const last = h2.info(h2.session('s1')).lastVerify!;
    expect(last).toMatchObject({ trigger: 'request', ok: true, differingTracks: 0 });
    // Kept in the catalog: the store reads it back from SQLite.
    expect(h2.store.sessions().find((session) => session.name === 's1')!.lastVerify).toMatchObject({ trigger: 'request', ok: true });
  }, 90_000);
});
