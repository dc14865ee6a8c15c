/**
 * Continuous data protection in running agents (issue 13): the journal of a
 * session at its secondary agent, turned on with the CLI; replicated writes
 * reach the replica through it; bookmarks; instant image access at a
 * bookmark exported over NBD and read with real clients (nbdcopy, qemu-img
 * compare); the volume guard; events; journal off. Two real agent
 * processes on loopback.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertListSchema, FailbackPreflightSchema, ImageAccessInfoSchema, PairBitmapSchema, JournalPointListSchema, JournalPointSchema, JournalViewSchema, type SessionType } from '@tandem/contract';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { GroupStampWriter, NbdBlockClient, stampBlock } from './helpers/nbd-block-client.ts';
import { qemuIo, run, runOk } from './helpers/nbd-harness.ts';
import { agentCliJson } from './helpers/run-command.ts';
import { eventsAbout, sessionPath, showSession } from './helpers/session-views.ts';
import { until, untilDrained } from './helpers/session-api.ts';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const TRACK = 64 * 1024;
/** The writer's slots are in the first 2 MiB (32 slots a track apart); patterns go above. */
const patterns: Array<[number, number, number]> = [
  [0x11, 4 * MiB, 2 * MiB],
  [0x22, 8 * MiB + 4096, 3 * TRACK + 512],
  [0x33, 15 * MiB, MiB],
];

let agents: AgentProcess[] = [];
afterEach(async () => {
  await Promise.allSettled(agents.map((agent) => agent.stop()));
  agents = [];
});

async function problemOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    return (error as { problem?: string }).problem ?? String(error);
  }
  throw new Error('not refused');
}

/** Sessions of `type` over `volumes.length` copy sets, started and drained, the journal turned on at beta with the CLI. */
async function setUp(type: SessionType, volumes: string[], env: NodeJS.ProcessEnv = {}): Promise<{ h1: AgentProcess; h2: AgentProcess }> {
  // Snapshot shipping: a cycle every 300 ms (the source's setting).
  const alphaEnv: NodeJS.ProcessEnv = type === 'snapshot-shipping' ? { TANDEM_SHIP_INTERVAL_MS: '300' } : {};
  agents = await startPairedAgents([{ site: 'alpha', env: alphaEnv }, { site: 'beta', env }]);
  const [h1, h2] = agents;
  for (const volume of volumes) {
    await h1.api.call('POST', '/v1/volumes', null, { name: volume, sizeBytes: SIZE });
    await h2.api.call('POST', '/v1/volumes', null, { name: `${volume}-copy`, sizeBytes: SIZE });
  }
  await h1.api.call('POST', '/v1/sessions', null, { name: 'cdp', type, peer: 'beta' });
  for (const volume of volumes) await h1.api.call('POST', `${sessionPath('cdp')}/pairs`, null, { h1Volume: volume, h2Volume: `${volume}-copy` });
  await h1.api.call('POST', `${sessionPath('cdp')}/actions/start`, null, {});
  for (const volume of volumes) await untilDrained(h1, 'cdp', volume);

  // The journal is kept at the secondary: the primary refuses, naming it.
  expect(await problemOf(h1.api.call('PUT', `${sessionPath('cdp')}/journal`, JournalViewSchema, { budgetBytes: 64 * MiB, requiredWindowSeconds: 3600 }))).toBe(
    'invalid-state',
  );
  const set = await h2.cli(['journal', 'set', 'cdp', '--size', '2G', '--window', '1h', '--json']);
  expect(set.code, set.stderr).toBe(0);
  const view = JournalViewSchema.parse(JSON.parse(set.stdout));
  expect(view).toMatchObject({ session: 'cdp', volumes: volumes.map((volume) => `${volume}-copy`), policy: { budgetBytes: 2048 * MiB, requiredWindowSeconds: 3600 } });
  return { h1, h2 };
}

async function bookmark(h2: AgentProcess, name: string) {
  return JournalPointSchema.parse(await agentCliJson(h2, ['journal', 'bookmark', 'cdp', name]));
}

async function openImage(h2: AgentProcess, bookmarkName: string) {
  return ImageAccessInfoSchema.parse(await agentCliJson(h2, ['image', 'access', 'cdp', '--bookmark', bookmarkName]));
}

async function nbdcopy(agent: AgentProcess, name: string, file: string): Promise<Buffer> {
  const target = path.join(path.dirname(agent.dataDir), file);
  await runOk('nbdcopy', [agent.nbdUri(name), target], 120_000);
  return readFile(target);
}

/** Polls until the async session at h1 has nothing marked and h2 applied every round: the replica has every acknowledged write. */
async function settled(h1: AgentProcess, h2: AgentProcess, volumes: string[]): Promise<void> {
  for (const volume of volumes) await untilDrained(h1, 'cdp', volume);
  await until('the replicas equal the primaries', async () => {
    for (const volume of volumes) {
      const compared = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', h1.nbdUri(volume), h2.nbdUri(`${volume}-copy`)]);
      if (compared.code !== 0) return false;
    }
    return true;
  });
}

async function bookmarkedImageEqualsCopy(type: SessionType, volumes: string[]): Promise<void> {
  const { h1, h2 } = await setUp(type, volumes);
  for (const volume of volumes) {
    await qemuIo(h1.nbdUri(volume), ...patterns.map(([byte, offset, length]) => `write -P ${byte} ${offset} ${length}`), 'flush');
  }

  // 1. A bookmark taken while a host writes (dependent writes, in turn over every volume): its image holds a prefix of them.
  const hosts = await Promise.all(volumes.map((volume) => NbdBlockClient.connect(h1.nbdHost, h1.nbdPort, volume)));
  const writer = new GroupStampWriter(TRACK);
  writer.start(hosts);
  let lowest = 0;
  let highest = 0;
  try {
    await until('150 stamped writes acknowledged', async () => writer.log.length >= 150);
    if (type !== 'sync') {
      // Async and semi-sync: the bookmark is of what the secondary applied; with the writer still going, it holds a prefix of the writes.
      lowest = 0;
    } else {
      lowest = writer.log.length;
    }
    await bookmark(h2, 'under-load');
    highest = writer.log.length + 1;
    await until('150 more stamped writes acknowledged', async () => writer.log.length >= highest + 150);
  } finally {
    await writer.stop();
  }

  // 2. Quiet: a bookmark, and a copy of each primary volume saved at that moment (qemu-img convert from the primary's export).
  const copies = new Map<string, string>();
  if (type !== 'sync') await settled(h1, h2, volumes);
  await bookmark(h2, 'quiet');
  for (const volume of volumes) {
    const file = path.join(path.dirname(h1.dataDir), `${volume}-at-quiet.raw`);
    await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', h1.nbdUri(volume), file], 120_000);
    copies.set(volume, file);
  }
  // Later writes: overwrites of the patterns and of the stamps, a trim, zeroes.
  const later = new GroupStampWriter(TRACK);
  later.start(hosts);
  for (const volume of volumes) {
    await qemuIo(h1.nbdUri(volume), `write -P 0x44 ${4 * MiB + 8192} ${MiB}`, `discard ${15 * MiB} ${MiB}`, `write -z ${8 * MiB} ${TRACK}`, 'flush');
  }
  await until('100 later stamped writes acknowledged', async () => later.log.length >= 100);
  await later.stop();
  await Promise.all(hosts.map((host) => host.close()));
  if (type !== 'sync') await settled(h1, h2, volumes);
  else {
    // Sync: the replica has every acknowledged write (reads at the secondary see it once distributed).
    for (const volume of volumes) {
      const compared = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', h1.nbdUri(volume), h2.nbdUri(`${volume}-copy`)]);
      expect(compared.code, compared.stdout + compared.stderr).toBe(0);
    }
  }
  const points = JournalPointListSchema.parse(await h2.api.call('GET', `${sessionPath('cdp')}/journal/points?every=0`, JournalPointListSchema));
  expect(points.points.filter((point) => point.bookmark !== null).map((point) => point.bookmark)).toEqual(['under-load', 'quiet']);
  // Async rounds and shipping cycles: a point each as it is applied (beside the first one, made when the journal came on).
  if (type === 'async' || type === 'snapshot-shipping') expect(points.points.filter((point) => point.bookmark === null).length).toBeGreaterThan(2);

  // The image at the quiet bookmark equals the copies, however the volumes changed since.
  const quiet = await openImage(h2, 'quiet');
  expect(quiet.exports.map((each) => each.volume)).toEqual(volumes.map((volume) => `${volume}-copy`));
  for (const volume of volumes) {
    const exported = quiet.exports.find((each) => each.volume === `${volume}-copy`)!.export;
    const compared = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', copies.get(volume)!, h2.nbdUri(exported)]);
    expect(compared.code, `${volume} at bookmark quiet: ${compared.stdout}${compared.stderr}`).toBe(0);
    // And it is not the volume now.
    const now = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', h1.nbdUri(volume), h2.nbdUri(exported)]);
    expect(now.code).toBe(1);
  }

  // The image is read-write; its writes are kept apart: the replica does not change, and they are gone at the end.
  const firstExport = quiet.exports[0].export;
  await qemuIo(h2.nbdUri(firstExport), `write -P 0x5a 0 ${TRACK}`, `read -P 0x5a 0 ${TRACK}`);
  const replicaHead = Buffer.alloc(8);
  const replica = await NbdBlockClient.connect(h2.nbdHost, h2.nbdPort, quiet.exports[0].volume);
  await replica.readInto(0, replicaHead);
  await replica.close();
  expect(replicaHead.equals(Buffer.alloc(8, 0x5a))).toBe(false);
  const end = await h2.cli(['image', 'end', 'cdp', String(quiet.id)]);
  expect(end.code, end.stderr).toBe(0);
  expect((await run('qemu-io', ['-f', 'raw', '-c', 'read 0 4096', h2.nbdUri(firstExport)])).code).not.toBe(0);

  // The image at the bookmark taken under load holds a prefix of the writes, bracketed by the bookmark call.
  const underLoad = await openImage(h2, 'under-load');
  const images: number[][] = [];
  for (const volume of volumes) {
    const exported = underLoad.exports.find((each) => each.volume === `${volume}-copy`)!.export;
    const bytes = await nbdcopy(h2, exported, `${volume}-under-load.raw`);
    images.push(writer.stampsIn(bytes));
    // Byte for byte above the writer's slots: the patterns, zeros elsewhere (the stamps are checked below).
    const expectedPatterns = Buffer.alloc(SIZE);
    for (const [byte, offset, length] of patterns) expectedPatterns.fill(byte, offset, offset + length);
    expect(bytes.subarray(2 * MiB).equals(expectedPatterns.subarray(2 * MiB)), `${volume}: patterns at under-load`).toBe(true);
  }
  const prefix = writer.consistentPrefix(images);
  expect(prefix, `the image holds a prefix of the ${writer.log.length} writes`).toBeGreaterThanOrEqual(lowest);
  expect(prefix).toBeLessThanOrEqual(highest);
  if (type === 'sync') expect(prefix).toBeGreaterThan(0);
  for (const [index, volume] of volumes.entries()) {
    const exported = underLoad.exports.find((each) => each.volume === `${volume}-copy`)!.export;
    const bytes = await readFile(path.join(path.dirname(h2.dataDir), `${volume}-under-load.raw`));
    const expected = Buffer.alloc(2 * MiB);
    for (const [which, slot, stamp] of writer.log.slice(0, prefix)) if (which === index) stampBlock(stamp).copy(expected, slot * TRACK);
    expect(bytes.subarray(0, 2 * MiB).equals(expected), `${volume} (${exported}): stamps of the prefix`).toBe(true);
  }
  await h2.api.call('DELETE', `${sessionPath('cdp')}/images/${underLoad.id}`, null);

  // kill -9 of the secondary: the journal comes back from the engine's recovery, its bookmarks too.
  await h2.kill('SIGKILL');
  await h2.restart({ samePorts: true });
  const again = await openImage(h2, 'quiet');
  for (const volume of volumes) {
    const exported = again.exports.find((each) => each.volume === `${volume}-copy`)!.export;
    const compared = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', copies.get(volume)!, h2.nbdUri(exported)]);
    expect(compared.code, `${volume} at bookmark quiet after kill -9: ${compared.stdout}${compared.stderr}`).toBe(0);
  }
  await h2.api.call('DELETE', `${sessionPath('cdp')}/images/${again.id}`, null);

  // Events for every change, at the secondary.
  const events = (await eventsAbout(h2, 'session.*', 'cdp')).map((event) => event.type);
  for (const type of ['session.journal-enabled', 'session.bookmark', 'session.image-opened', 'session.image-ended']) expect(events).toContain(type);
  // Within its budget: retention never dropped points for space (it would drop bookmarks too).
  expect(events).not.toContain('session.journal-space');

  // The journal shows its use.
  const shown = JournalViewSchema.parse(await agentCliJson(h2, ['journal', 'show', 'cdp']));
  expect(shown.status.usedBytes).toBeGreaterThan(0);
  const named = (await h2.api.call('GET', `${sessionPath('cdp')}/journal/points?every=0`, JournalPointListSchema)).points.flatMap((point) =>
    point.bookmark ? [point.bookmark] : [],
  );
  // The secondary's restart makes the source start a new run (a resync): an automatic bookmark before it may be there too.
  expect(named.filter((name) => !name.startsWith('before-resync-'))).toEqual(['under-load', 'quiet']);
  expect(shown.status.bookmarkCount).toBe(named.length);
  expect(shown.images).toEqual([]);
}

describe('continuous data protection in running agents', () => {
  it('sync: an image opened at a bookmark equals a copy of the volume saved when the bookmark was taken (qemu-img compare)', async () => {
    await bookmarkedImageEqualsCopy('sync', ['prod']);
  }, 240_000);

  it('semi-sync: the image at a bookmark equals the copy saved then', async () => {
    await bookmarkedImageEqualsCopy('semi-sync', ['prod']);
  }, 240_000);

  it('async, two volumes with dependent writes: images at bookmarks equal the copies and hold a prefix of the writes', async () => {
    await bookmarkedImageEqualsCopy('async', ['prod', 'logs']);
  }, 240_000);

  it('snapshot shipping, two volumes with dependent writes: a point per committed cycle; images at bookmarks equal the copies and hold a prefix of the writes', async () => {
    await bookmarkedImageEqualsCopy('snapshot-shipping', ['prod', 'logs']);
  }, 240_000);

  it('volume guard: a replica with a journal takes no host writes and is neither deleted nor resized; journal off and on again', async () => {
    const { h1, h2 } = await setUp('sync', ['prod']);
    await qemuIo(h1.nbdUri('prod'), `write -P 0x61 0 ${MiB}`, 'flush');
    // The CLI's text: the journal, its points, an image access printing the export name to use, bad input refused.
    const shown = await h2.cli(['journal', 'show', 'cdp']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/replica volumes\s+prod-copy/);
    expect((await h2.cli(['journal', 'bookmark', 'cdp', 'after-61'])).stdout).toMatch(/bookmark after-61 of session cdp: point #\d+/);
    expect((await h2.cli(['journal', 'points', 'cdp'])).stdout).toMatch(/#\d+.*after-61/);
    const duplicate = await h2.cli(['journal', 'bookmark', 'cdp', 'after-61']);
    expect([duplicate.code, duplicate.stderr]).toEqual([1, expect.stringMatching(/already-exists/)]);
    expect((await h2.cli(['image', 'access', 'cdp'])).code).toBe(2);
    const unknown = await h2.cli(['image', 'access', 'cdp', '--bookmark', 'nope']);
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringMatching(/not-found/)]);
    const access = await h2.cli(['image', 'access', 'cdp', '--bookmark', 'after-61']);
    expect(access.code, access.stderr).toBe(0);
    const [, imageId, exportName] = /image (\d+) of session cdp[\s\S]*?(image-\d+-prod-copy)/.exec(access.stdout) ?? [];
    expect(exportName, access.stdout).toBeDefined();
    await qemuIo(h2.nbdUri(exportName), `read -P 0x61 0 ${MiB}`);
    expect((await h2.cli(['image', 'end', 'cdp', imageId])).code).toBe(0);
    // Neither deleted nor resized: the refusal names the journal.
    const deleted = await h2.api.request('DELETE', '/v1/volumes/prod-copy');
    expect(deleted.status).toBe(409);
    expect(JSON.stringify(deleted.body)).toMatch(/cdp-journal/);
    // No host writes: the refusal reaches the NBD client, the replica keeps its bytes.
    const refused = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x62 0 4096', h2.nbdUri('prod-copy')]);
    expect(`${refused.code} ${refused.stdout}${refused.stderr}`).toMatch(/Operation not permitted|read-only|failed/i);
    await qemuIo(h2.nbdUri('prod-copy'), `read -P 0x61 0 ${MiB}`);

    // Off: the journal goes (events say so), the replica keeps every write; on again, it starts from the replica as it is.
    const off = await h2.cli(['journal', 'off', 'cdp']);
    expect(off.code, off.stderr).toBe(0);
    expect(await problemOf(h2.api.call('GET', `${sessionPath('cdp')}/journal`, JournalViewSchema))).toBe('not-found');
    await qemuIo(h2.nbdUri('prod-copy'), `read -P 0x61 0 ${MiB}`);
    const events = (await eventsAbout(h2, 'session.*', 'cdp')).map((event) => event.type);
    expect(events).toContain('session.journal-disabled');
    const again = await h2.cli(['journal', 'set', 'cdp', '--size', '1G', '--window', '10m', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JournalViewSchema.parse(JSON.parse(again.stdout)).status.pointCount).toBe(1);
    await qemuIo(h1.nbdUri('prod'), `write -P 0x63 ${MiB} 4096`, 'flush');

    // Recovered without a point: the replica keeps the newest image, the journal ends, and host writes are taken.
    await h2.api.call('POST', `${sessionPath('cdp')}/actions/recover`, null, {});
    await until('target-available at beta', async () => (await showSession(h2, 'cdp')).state === 'target-available');
    expect(await problemOf(h2.api.call('GET', `${sessionPath('cdp')}/journal`, JournalViewSchema))).toBe('not-found');
    await qemuIo(h2.nbdUri('prod-copy'), `read -P 0x61 0 ${MiB}`, `read -P 0x63 ${MiB} 4096`, 'write -P 0x62 0 4096', 'read -P 0x62 0 4096');
  }, 180_000);

  for (const type of ['sync', 'async'] as const) {
    it(`${type}: recover production at a bookmark: the replica rolls back to it (qemu-img compare with the copy saved then), takes host writes, and the failback brings H1 to it`, async () => {
      const { h1, h2 } = await setUp(type, ['prod']);
      await qemuIo(h1.nbdUri('prod'), ...patterns.map(([byte, offset, length]) => `write -P ${byte} ${offset} ${length}`), 'flush');
      if (type === 'async') await settled(h1, h2, ['prod']);
      await bookmark(h2, 'good');
      const good = path.join(path.dirname(h1.dataDir), 'prod-at-good.raw');
      await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', h1.nbdUri('prod'), good], 120_000);
      // The damage: overwrites, a trim, and tracks that were empty at the bookmark.
      await qemuIo(h1.nbdUri('prod'), `write -P 0x66 ${4 * MiB + 8192} ${MiB}`, `discard ${15 * MiB} ${MiB}`, `write -P 0x67 ${12 * MiB} ${4 * TRACK}`, 'flush');
      await settled(h1, h2, ['prod']);
      await until('the journal at beta holds the damage', async () => {
        const view = await h2.api.call('GET', `${sessionPath('cdp')}/journal`, JournalViewSchema);
        return view.status.pendingRecords === 0 && view.status.newestPoint !== null && view.status.newestPoint.seq > 0;
      });

      // Bad input changes nothing: an unknown bookmark, two points at once.
      const unknown = await h1.cli(['session', 'recover', 'cdp', '--bookmark', 'nope']);
      expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringMatching(/not-found/)]);
      const two = await h1.cli(['session', 'recover', 'cdp', '--bookmark', 'good', '--point', '1']);
      expect(two.code).toBe(2);
      expect((await showSession(h2, 'cdp')).state).toBe('prepared');

      // Recovered through H1 (forwarded to beta, the target): the replica is the image of the bookmark.
      const recovered = await h1.cli(['session', 'recover', 'cdp', '--bookmark', 'good']);
      expect(recovered.code, recovered.stderr).toBe(0);
      await until('target-available at beta', async () => (await showSession(h2, 'cdp')).state === 'target-available');
      const compared = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', good, h2.nbdUri('prod-copy')]);
      expect(compared.code, compared.stdout + compared.stderr).toBe(0);
      // The journal ended (its event names the point), and the replica takes host writes.
      expect(await problemOf(h2.api.call('GET', `${sessionPath('cdp')}/journal`, JournalViewSchema))).toBe('not-found');
      const ended = (await eventsAbout(h2, 'session.journal-disabled', 'cdp')).find((event) => /recovered here/.test(event.message));
      expect(ended?.message).toMatch(/rolled back to point \d+ \(bookmark good\).*track\(s\) restored/);
      await qemuIo(h2.nbdUri('prod-copy'), 'write -P 0x77 0 4096', 'flush');

      // The failback's plan copies every rolled-back track (they differ from H1 now) and the new write, before any verify.
      const rolled = Number(ended?.data?.rolledTracks);
      expect(rolled).toBe(17 + 16 + 4);
      const preflight = await h2.api.call('GET', `${sessionPath('cdp')}/failback-preflight`, FailbackPreflightSchema);
      expect(preflight.pairs[0]).toMatchObject({ targetChangedTracks: rolled + 1, differingTracks: rolled + 1 });
      // Failback from beta: H1 gets the rolled-back tracks and the new write; the volumes end equal.
      await h2.api.call('POST', `${sessionPath('cdp')}/actions/failback`, null, { verifyCodes: true });
      await until('prepared H2 -> H1 with nothing marked', async () => {
        const session = await showSession(h2, 'cdp');
        if (session.state !== 'prepared' || session.direction !== 'h2-h1') return false;
        const bitmap = await h2.api.call('GET', `${sessionPath('cdp')}/pairs/prod/bitmap`, PairBitmapSchema);
        return bitmap.markedTracks === 0;
      });
      await until('H1 equals the recovered replica', async () => {
        const again = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', h1.nbdUri('prod'), h2.nbdUri('prod-copy')]);
        return again.code === 0;
      });
      await qemuIo(h1.nbdUri('prod'), 'read -P 0x77 0 4096', `read -P 0x11 ${4 * MiB + 8192} ${MiB}`, `read -P 0 ${12 * MiB} ${4 * TRACK}`, `read -P 0x33 ${15 * MiB} ${MiB}`);
      // Running H2 -> H1, beta is the source: no journal can be turned on there.
      const refused = await h2.cli(['journal', 'set', 'cdp', '--size', '1G', '--window', '1h']);
      expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/invalid-state.*this site is its source/)]);
    }, 240_000);
  }

  it('alert: a journal nearly full raises journal-nearly-full (and window-short) at the secondary; a larger budget clears it', async () => {
    // Retention held off, so the journal stays over its budget; alerts evaluated fast.
    const { h1, h2 } = await setUp('sync', ['prod'], { TANDEM_JOURNAL_RETENTION_MS: '600000', TANDEM_ALERT_INTERVAL_MS: '200', TANDEM_ALERT_CLEAR_MS: '1500' });
    const small = await h2.cli(['journal', 'set', 'cdp', '--size', '1M', '--window', '1h']);
    expect(small.code, small.stderr).toBe(0);
    const alertsAt = async () => h2.api.call('GET', '/v1/alerts?recent=50', AlertListSchema);
    expect((await alertsAt()).active.filter((alert) => alert.kind.startsWith('journal-'))).toEqual([]);
    // Overwrites: what they replace stays as undo, held by the journal (1 MiB: its whole budget).
    await qemuIo(h1.nbdUri('prod'), `write -P 1 0 ${MiB}`, `write -P 2 0 ${MiB}`, 'flush');
    const raised = await until('journal-nearly-full raised at beta', async () => {
      const list = await alertsAt();
      return list.active.find((alert) => alert.kind === 'journal-nearly-full' && alert.subject.session === 'cdp') ?? null;
    }, 30_000);
    expect(raised.severity).toBe('warning');
    expect(raised.message).toMatch(/session cdp: the journal uses \d+ % of its space/);
    expect((await alertsAt()).active.some((alert) => alert.kind === 'journal-window-short')).toBe(true);
    // The primary keeps no journal: no such alert there.
    expect((await h1.api.call('GET', '/v1/alerts', AlertListSchema)).active.some((alert) => alert.kind.startsWith('journal-'))).toBe(false);
    const large = await h2.cli(['journal', 'set', 'cdp', '--size', '1G', '--window', '1h']);
    expect(large.code, large.stderr).toBe(0);
    await until('journal-nearly-full cleared', async () => {
      const list = await alertsAt();
      return !list.active.some((alert) => alert.kind === 'journal-nearly-full') && list.recent.some((alert) => alert.kind === 'journal-nearly-full');
    }, 30_000);
  }, 180_000);
});
