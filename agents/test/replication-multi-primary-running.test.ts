import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startThreeSites, type ThreeSites } from './helpers/multi-primary-sites.ts';
import { readAll, waitFor } from './helpers/replication-sites.ts';
import { StampedWriter } from './helpers/stamped-writer.ts';

const MiB = 1024 * 1024;
const BLOCK = 4096;

let sites: ThreeSites | null = null;
const writers: StampedWriter[] = [];
afterEach(async () => {
  await Promise.all(writers.splice(0).map((writer) => writer.stop()));
  await sites?.close();
  sites = null;
});

const eventsOf = (s: ThreeSites, site: 'alpha' | 'bravo' | 'charlie', type: string) =>
  s[site].engine.catalog.listEvents(0, 5000).filter((event) => event.type === type);

/**
 * Copy sets added to and removed from a running multi-primary async session
 * (alpha the master, bravo a member, charlie the secondary), checked with
 * dependent writes across agents: charlie, frozen between applies, must be
 * exactly the primaries' image at the cut of the last round it applied, for
 * the member copy sets always and for a new copy set once it joined.
 */
describe('copy sets of a running multi-primary session', () => {
  it('adds copy sets at bravo and at the master under cross-agent writes: the secondary stays the members\' image, each new one joins, then removals at bravo and at the master leave the rest consistent', async () => {
    sites = await startThreeSites();
    const s = sites;
    const master = s.alpha.replication.service;
    await s.alpha.engine.createVolume('a', 16 * MiB);
    await s.alpha.engine.createVolume('c', 16 * MiB);
    await s.bravo.engine.createVolume('b', 16 * MiB);
    await s.bravo.engine.createVolume('n', 16 * MiB);
    await s.alpha.engine.createVolume('m', 16 * MiB);
    await s.bravo.engine.createVolume('q', 16 * MiB);
    for (const name of ['a2', 'b2', 'c2', 'n2', 'm2', 'q2']) await s.charlie.engine.createVolume(name, 16 * MiB);
    // n holds data before it is added (the initial copy moves it); n2 holds stale data the add trims.
    await s.bravo.replication.exports.openExport('n').write(5 * MiB, randomBytes(2 * MiB));
    await s.charlie.engine.device('n2').write(12 * MiB, Buffer.alloc(MiB, 9));
    await master.createSession('mp', 'async', 'charlie');
    await master.addPair('mp', 'a', 'a2');
    await master.addPair('mp', 'c', 'c2');
    await master.addPair('mp', 'b', 'b2', { primaryAgent: 'bravo' });
    await master.addPair('mp', 'q', 'q2', { primaryAgent: 'bravo' });
    await master.act('mp', 'start');
    await waitFor(() => master.session('mp').state === 'prepared', 60_000, 'prepared');
    const open = (site: 'alpha' | 'bravo', volume: string) => s[site].replication.exports.openExport(volume);

    // Members: stamp i at alpha's a, then at bravo's b. Joining: alpha's c, then bravo's new n.
    const members = new StampedWriter(BLOCK);
    const joining = new StampedWriter(BLOCK);
    writers.push(members, joining);
    members.start({ a: open('alpha', 'a'), b: open('bravo', 'b') });
    joining.start({ a: open('alpha', 'c'), b: open('bravo', 'n') });
    await waitFor(() => members.writes.length > 50 && joining.writes.length > 50, 20_000, 'writes');

    const charlie = s.charlie.replication.service;
    const atCharlie = charlie.session('mp');
    const device = (name: string) => s.charlie.engine.device(name);
    const stats = { samples: 0, joinedSamples: 0, masterTimeNull: 0, memberStates: new Set<string>(), maxMemberSyncing: 0 };
    let joinedAt = 0;
    /** The master's own new copy set m, written with bravo's q: checked once m joined. */
    const local = new StampedWriter(BLOCK);
    writers.push(local);
    let localJoinedAt = 0;
    let localSamples = 0;
    /** One sample: charlie frozen between applies is the writers' image at the cut of the round it applied last. */
    const sample = async (withJoining: boolean) => {
      const release = await charlie.applier.freeze(atCharlie.id);
      try {
        const applied = charlie.reports.appliedTimes.get(atCharlie.id);
        if (applied === undefined) return;
        const check = async (writer: StampedWriter, x: string, y: string) => {
          const [stampsX, stampsY] = await Promise.all([writer.stampsOf(device(x)), writer.stampsOf(device(y))]);
          const { match, lowest, highest } = writer.matchesCut(applied, stampsX, stampsY);
          expect(match, `${x}+${y} at ${new Date(applied).toISOString()} is the primaries' image after ${lowest}..${highest} writes`).toBe(true);
        };
        await check(members, 'a2', 'b2');
        stats.samples++;
        if (withJoining && joinedAt && applied > joinedAt) {
          await check(joining, 'c2', 'n2');
          stats.joinedSamples++;
        }
        if (localJoinedAt && applied > localJoinedAt) {
          await check(local, 'm2', 'q2');
          localSamples++;
        }
      } finally {
        release();
      }
      const info = master.info(master.session('mp'));
      if (info.consistencyTime === null) stats.masterTimeNull++;
      for (const pair of info.pairs.filter((p) => p.h1Volume === 'a' || p.h1Volume === 'b')) stats.memberStates.add(pair.state);
    };

    await master.addPair('mp', 'n', 'n2', { primaryAgent: 'bravo' });
    expect(master.session('mp').state, 'Preparing while n joins').toBe('preparing');
    expect(master.info(master.session('mp')).pairs.find((pair) => pair.h1Volume === 'n')?.primarySite).toBe('bravo');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (!joinedAt) {
        const joined = eventsOf(s, 'alpha', 'pair.joined').find((event) => event.message.includes('bravo:n -> n2'));
        if (joined) joinedAt = Date.parse(joined.time);
      }
      await sample(true);
      if (joinedAt && master.session('mp').state === 'prepared' && stats.joinedSamples >= 10) break;
    }
    expect(joinedAt, 'n joined the consistency group (the master recorded it)').toBeGreaterThan(0);
    expect(master.session('mp').state).toBe('prepared');
    expect(stats.joinedSamples).toBeGreaterThanOrEqual(10);
    expect(stats.samples).toBeGreaterThan(10);
    expect(stats.masterTimeNull, 'the master kept a consistency time (of the members) while n joined').toBe(0);
    expect([...stats.memberStates], 'a and b stayed duplex').toEqual(['duplex']);
    // n was copied synchronously while joining, then joined bravo's parts: bravo recorded both.
    expect(Number(eventsOf(s, 'bravo', 'pair.added').find((event) => event.message.includes('n -> n2'))?.data?.markedTracks)).toBeGreaterThanOrEqual(32);
    expect(eventsOf(s, 'bravo', 'pair.joined').some((event) => event.message.includes('n -> n2'))).toBe(true);
    // The members never resynced.
    expect(eventsOf(s, 'alpha', 'session.resync')).toHaveLength(1);
    expect(eventsOf(s, 'bravo', 'session.resync')).toHaveLength(1);

    // A copy set at the master itself (m), written together with bravo's q: it joins the master's parts once duplex.
    local.start({ a: open('alpha', 'm'), b: open('bravo', 'q') });
    await waitFor(() => local.writes.length > 50, 20_000, 'writes to m and q');
    await master.addPair('mp', 'm', 'm2');
    expect(master.session('mp').state, 'Preparing while m joins').toBe('preparing');
    const localDeadline = Date.now() + 60_000;
    while (Date.now() < localDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (!localJoinedAt) {
        const joined = eventsOf(s, 'alpha', 'pair.joined').find((event) => event.message.includes('m -> m2'));
        if (joined) localJoinedAt = Date.parse(joined.time);
      }
      await sample(true);
      if (localJoinedAt && master.session('mp').state === 'prepared' && localSamples >= 10) break;
    }
    expect(localJoinedAt, 'm joined the consistency group').toBeGreaterThan(0);
    expect(localSamples).toBeGreaterThanOrEqual(10);
    expect(master.session('mp').state).toBe('prepared');
    expect(stats.masterTimeNull, 'the master kept a consistency time while m joined').toBe(0);
    await local.stop();

    // Remove n at bravo (a member copy set) and c at the master while the members' writes go on.
    await joining.stop();
    const removedAtBravo = s.bravo.replication.service.pairsOf(s.bravo.replication.service.session('mp')).find((pair) => pair.h1Volume === 'n')!;
    await master.removePair('mp', 'n');
    await master.removePair('mp', 'c');
    const marker = Buffer.alloc(65536, 0x5a);
    await open('bravo', 'n').write(0, marker);
    const samplesAtRemoval = stats.samples;
    const writesAtRemoval = members.writes.length;
    while (members.writes.length < writesAtRemoval + 200 || stats.samples < samplesAtRemoval + 10) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await sample(false);
    }
    await members.stop();
    expect(master.session('mp').state).toBe('prepared');
    expect(master.info(master.session('mp')).pairs.map((pair) => pair.h1Volume)).toEqual(['a', 'm', 'b', 'q']);
    expect(s.bravo.replication.service.pairsOf(s.bravo.replication.service.session('mp')).map((pair) => pair.h1Volume)).toEqual(['b', 'q']);
    expect(charlie.pairsOf(atCharlie).map((pair) => pair.h2Volume).sort()).toEqual(['a2', 'b2', 'm2', 'q2']);
    expect(master.multiPrimary.memberPairs(master.session('mp')).map((pair) => pair.h1Volume)).toEqual(['b', 'q']);
    expect(charlie.multiPrimary.memberPairs(atCharlie).map((pair) => pair.h1Volume)).toEqual(['b', 'q']);
    expect(() => s.bravo.engine.bitmaps.view(removedAtBravo.outOfSyncBitmap!)).toThrow();
    const there = Buffer.alloc(65536);
    await device('n2').readInto(0, there);
    expect(there.equals(marker), 'a write to n after its removal stays at bravo').toBe(false);
    // n2 and c2 take host writes again.
    await s.charlie.replication.exports.openExport('n2').write(0, Buffer.alloc(512, 1));
    await s.charlie.replication.exports.openExport('c2').write(0, Buffer.alloc(512, 1));

    const last = members.writes.at(-1)!.ackedAt;
    await waitFor(() => Date.parse(master.consistencyTime(master.session('mp')) ?? '0') > last, 30_000, 'caught up');
    expect((await readAll(s.alpha, 'a')).equals(await readAll(s.charlie, 'a2')), 'a == a2').toBe(true);
    expect((await readAll(s.bravo, 'b')).equals(await readAll(s.charlie, 'b2')), 'b == b2').toBe(true);
    expect((await readAll(s.alpha, 'm')).equals(await readAll(s.charlie, 'm2')), 'm == m2').toBe(true);
    expect((await readAll(s.bravo, 'q')).equals(await readAll(s.charlie, 'q2')), 'q == q2').toBe(true);
    for (const site of ['alpha', 'bravo', 'charlie'] as const) {
      expect(eventsOf(s, site, 'pair.removed').some((event) => event.message.includes('n -> n2')), `pair.removed for n at ${site}`).toBe(true);
    }
  }, 180_000);

  it('refuses what it cannot do while the session runs, with stable problem codes, and changes nothing', async () => {
    sites = await startThreeSites();
    const s = sites;
    const master = s.alpha.replication.service;
    await s.alpha.engine.createVolume('a', 8 * MiB);
    await s.bravo.engine.createVolume('b', 8 * MiB);
    await s.bravo.engine.createVolume('big', 16 * MiB);
    await s.bravo.engine.createVolume('extra', 8 * MiB);
    for (const name of ['a2', 'b2', 'x2']) await s.charlie.engine.createVolume(name, 8 * MiB);
    await master.createSession('mp', 'async', 'charlie');
    await master.addPair('mp', 'a', 'a2');
    await master.addPair('mp', 'b', 'b2', { primaryAgent: 'bravo' });
    await master.act('mp', 'start');
    await waitFor(() => master.session('mp').state === 'prepared', 60_000, 'prepared');

    await expect(master.addPair('mp', 'big', 'x2', { primaryAgent: 'bravo' })).rejects.toMatchObject({ problem: 'invalid-size' });
    await expect(master.addPair('mp', 'b', 'x2', { primaryAgent: 'bravo' })).rejects.toMatchObject({ problem: 'volume-busy' });
    await expect(master.addPair('mp', 'missing', 'x2', { primaryAgent: 'bravo' })).rejects.toMatchObject({ problem: 'not-found' });
    // bravo's last copy set leaves the rounds only while the session is suspended.
    await expect(master.removePair('mp', 'b')).rejects.toMatchObject({ problem: 'invalid-state' });
    // Only the master adds and removes copy sets.
    await expect(s.bravo.replication.service.addPair('mp', 'extra', 'x2')).rejects.toMatchObject({ problem: 'invalid-state' });
    await expect(s.bravo.replication.service.removePair('mp', 'b')).rejects.toMatchObject({ problem: 'invalid-state' });

    // A session started with primaries at alpha only cuts its groups alone: bravo's copy sets wait for a new start.
    await s.alpha.engine.createVolume('solo', 8 * MiB);
    await s.charlie.engine.createVolume('solo2', 8 * MiB);
    await master.createSession('single', 'async', 'charlie');
    await master.addPair('single', 'solo', 'solo2');
    await master.act('single', 'start');
    await waitFor(() => master.session('single').state === 'prepared', 60_000, 'single prepared');
    await expect(master.addPair('single', 'extra', 'x2', { primaryAgent: 'bravo' })).rejects.toMatchObject({ problem: 'invalid-state' });
    expect(master.info(master.session('single')).pairs.map((pair) => pair.h1Volume)).toEqual(['solo']);

    const info = master.info(master.session('mp'));
    expect(info.state).toBe('prepared');
    expect(info.pairs.map((pair) => pair.h1Volume)).toEqual(['a', 'b']);
    expect(s.charlie.replication.service.pairsOf(s.charlie.replication.service.session('mp')).map((pair) => pair.h2Volume).sort()).toEqual(['a2', 'b2']);
    expect(s.bravo.replication.service.pairsOf(s.bravo.replication.service.session('mp')).map((pair) => pair.h1Volume)).toEqual(['b']);
    // x2 was not taken: it still takes host writes.
    await s.charlie.replication.exports.openExport('x2').write(0, Buffer.alloc(512, 1));
  }, 120_000);
});
