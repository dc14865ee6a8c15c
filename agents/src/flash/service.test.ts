import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ProblemError } from '@tandem/contract';
import { checkDataDir } from '../storage/check.ts';
import { StorageEngine } from '../storage/engine.ts';
import { initDataDir } from '../storage/init.ts';
import { Splitter } from '../write-path/splitter.ts';
import { FlashService } from './service.ts';

/**
 * The flash copy service over a real engine: establish, copy-on-write by
 * redirection, background copy to 100 %, incremental refresh and reverse,
 * withdraw, write inhibit, validation, restart and crash recovery.
 */

const TRACK = 65536;
let roots: string[] = [];
let open: Array<{ engine: StorageEngine; flash: FlashService }> = [];

afterEach(async () => {
  for (const { engine, flash } of open) {
    await flash.close().catch(() => {});
    await engine.close().catch(() => {});
  }
  open = [];
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
  roots = [];
});

async function freshRoot(): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-flash-'));
  roots.push(root);
  await initDataDir(root, { site: 'flash', trackSize: TRACK });
  return root;
}

async function openAgent(root: string): Promise<{ engine: StorageEngine; flash: FlashService }> {
  const engine = await StorageEngine.open(root);
  const flash = new FlashService({ engine, logger: pino({ level: 'silent' }) });
  flash.start();
  const agent = { engine, flash };
  open.push(agent);
  return agent;
}

async function crash(agent: { engine: StorageEngine; flash: FlashService }): Promise<void> {
  open = open.filter((a) => a !== agent);
  await agent.flash.close();
  await agent.engine.abandonForCrashTest();
}

async function closeAgent(agent: { engine: StorageEngine; flash: FlashService }): Promise<void> {
  open = open.filter((a) => a !== agent);
  await agent.flash.close();
  await agent.engine.close();
}

async function read(engine: StorageEngine, name: string, offset = 0, length?: number): Promise<Buffer> {
  const device = engine.device(name);
  const out = Buffer.alloc(length ?? device.sizeBytes - offset);
  await device.readInto(offset, out);
  return out;
}

function filled(byte: number, length: number): Buffer {
  return Buffer.alloc(length, byte);
}

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function problemOf(promise: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    if (error instanceof ProblemError) return error.problem;
    throw error;
  }
  throw new Error('expected a problem');
}

describe('flash copy service', () => {
  it('gives the target the point in time at once; later source writes redirect and the old data stays with the target', async () => {
    const root = await freshRoot();
    const { engine, flash } = await openAgent(root);
    await engine.createVolume('src', 64 * TRACK);
    await engine.createVolume('tgt', 64 * TRACK);
    await engine.device('src').write(0, filled(1, 8 * TRACK));
    await engine.device('tgt').write(TRACK * 20, filled(9, TRACK));
    const info = await flash.establish({ pairs: [{ source: 'src', target: 'tgt' }], backgroundCopy: false } as never);
    expect(info.state).toBe('copying');
    expect(info.pairs[0].copiedTracks).toBe(64 - 8);
    const image = await read(engine, 'src');
    expect((await read(engine, 'tgt')).equals(image)).toBe(true);
    // Source overwrites: the target keeps the point in time, and those tracks count as copied.
    await engine.device('src').write(TRACK + 100, filled(2, 2 * TRACK));
    expect((await read(engine, 'tgt')).equals(image)).toBe(true);
    expect(flash.get(info.name).pairs[0].copiedTracks).toBe(64 - 8 + 3);
    // Target writes go to the target only.
    await engine.device('tgt').write(5 * TRACK, filled(7, 10));
    expect((await read(engine, 'src', 5 * TRACK, 10)).equals(filled(1, 10))).toBe(true);
    await closeAgent({ engine, flash });
    expect((await checkDataDir(root)).problems).toEqual([]);
  });

  it('background copy reaches 100 % and idle-copied; the target is then physically independent', async () => {
    const root = await freshRoot();
    const { engine, flash } = await openAgent(root);
    await engine.createVolume('a', 200 * TRACK);
    await engine.createVolume('b', 200 * TRACK);
    for (let t = 0; t < 200; t += 3) await engine.device('a').write(t * TRACK, filled(t % 250, TRACK));
    const image = await read(engine, 'a');
    const info = await flash.establish({ name: 'bg', pairs: [{ source: 'a', target: 'b' }] } as never);
    await waitFor(() => flash.get('bg').state === 'idle-copied');
    const done = flash.get('bg');
    expect(done.pairs[0].copiedTracks).toBe(200);
    expect(done.pairs[0].percent).toBe(100);
    expect(info.pointInTime).not.toBeNull();
    expect((await read(engine, 'b')).equals(image)).toBe(true);
    const map = flash.trackMap('bg', done.pairs[0].id, { start: 0, buckets: 10 });
    expect(map.runs).toEqual([[10, 20]]);
    // Independent: no extent shared between a and b any more.
    expect(engine.getVolume('b').sharedBytes).toBe(0);
    const events = engine.catalog.listEvents(0, 1000).filter((e) => e.type === 'flash.state').map((e) => `${e.data?.from}->${e.data?.to}`);
    expect(events).toEqual(expect.arrayContaining(['null->preparing', 'preparing->prepared', 'prepared->copying', 'copying->idle-copied']));
    await closeAgent({ engine, flash });
    expect((await checkDataDir(root)).problems).toEqual([]);
  });

  it('rate-limits the background copy, pauses and resumes it, and continues it after a restart', async () => {
    const root = await freshRoot();
    let agent = await openAgent(root);
    await agent.engine.createVolume('a', 256 * TRACK);
    await agent.engine.createVolume('b', 256 * TRACK);
    await agent.engine.device('a').write(0, filled(3, 256 * TRACK));
    const image = await read(agent.engine, 'a');
    // 16 MiB at 4 MiB/s: about 4 s.
    await agent.flash.establish({ name: 'slow', pairs: [{ source: 'a', target: 'b' }], rateMiBps: 4 } as never);
    await new Promise((resolve) => setTimeout(resolve, 600));
    const early = agent.flash.get('slow');
    expect(early.state).toBe('copying');
    expect(early.pairs[0].percent).toBeGreaterThan(0);
    expect(early.pairs[0].percent).toBeLessThan(60);
    const paused = await agent.flash.update('slow', { paused: true });
    expect(paused.state).toBe('suspended');
    const at = agent.flash.get('slow').pairs[0].copiedTracks;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(agent.flash.get('slow').pairs[0].copiedTracks).toBe(at);
    await agent.flash.update('slow', { paused: false, rateMiBps: null });
    await closeAgent(agent);
    agent = await openAgent(root);
    await waitFor(() => agent.flash.get('slow').state === 'idle-copied');
    expect((await read(agent.engine, 'b')).equals(image)).toBe(true);
  });

  it('incremental refresh copies only changed tracks from both sides; reverse restores the target onto the source', async () => {
    const root = await freshRoot();
    const { engine, flash } = await openAgent(root);
    await engine.createVolume('s', 128 * TRACK);
    await engine.createVolume('t', 128 * TRACK);
    await engine.device('s').write(0, filled(1, 128 * TRACK));
    await flash.establish({ name: 'inc', pairs: [{ source: 's', target: 't' }], incremental: true, backgroundCopy: true } as never);
    await waitFor(() => flash.get('inc').state === 'idle-copied');
    await engine.device('s').write(10 * TRACK, filled(2, TRACK));
    await engine.device('s').write(90 * TRACK + 5, filled(3, 100));
    await engine.device('t').write(50 * TRACK, filled(4, TRACK));
    expect(flash.get('inc').pairs[0].changedTracks).toEqual({ source: 2, target: 1 });
    const refreshed = await flash.refresh('inc', { holdTimeoutMs: 2000 });
    expect(refreshed.pairs[0].changedTracks).toEqual({ source: 0, target: 0 });
    expect((await read(engine, 't')).equals(await read(engine, 's'))).toBe(true);
    const data = engine.catalog.listEvents(0, 1000).find((e) => e.type === 'flash.refreshed')?.data as { tracks: number };
    expect(data.tracks).toBeLessThan(128);
    // Now the target is the good copy; the source gets damaged and restored from it.
    await waitFor(() => flash.get('inc').state === 'idle-copied');
    const good = await read(engine, 't');
    await engine.device('s').write(0, filled(0xee, 3 * TRACK));
    await engine.device('s').trim(100 * TRACK, 4 * TRACK);
    await flash.reverse('inc', { holdTimeoutMs: 2000 });
    expect((await read(engine, 's')).equals(good)).toBe(true);
    await closeAgent({ engine, flash });
    expect((await checkDataDir(root)).problems).toEqual([]);
  });

  it('validates pairs with stable problem codes and refuses to delete volumes in a relationship', async () => {
    const root = await freshRoot();
    const { engine, flash } = await openAgent(root);
    await engine.createVolume('x', 16 * TRACK);
    await engine.createVolume('y', 16 * TRACK);
    await engine.createVolume('z', 16 * TRACK);
    await engine.createVolume('small', 8 * TRACK);
    await engine.device('x').write(0, filled(1, 4 * TRACK));
    expect(await problemOf(flash.establish({ pairs: [{ source: 'x', target: 'nope' }] } as never))).toBe('not-found');
    expect(await problemOf(flash.establish({ pairs: [{ source: 'x', target: 'small' }] } as never))).toBe('invalid-size');
    expect(await problemOf(flash.establish({ pairs: [{ source: 'x', target: 'x' }] } as never))).toBe('conflict');
    expect(
      await problemOf(flash.establish({ pairs: [{ source: 'x', target: 'y' }, { source: 'y', target: 'z' }] } as never)),
    ).toBe('conflict');
    await flash.establish({ name: 'one', pairs: [{ source: 'x', target: 'y' }], backgroundCopy: false } as never);
    expect(await problemOf(flash.establish({ pairs: [{ source: 'z', target: 'y' }] } as never))).toBe('volume-busy');
    expect(await problemOf(flash.establish({ pairs: [{ source: 'y', target: 'z' }] } as never))).toBe('volume-busy');
    expect(await problemOf(flash.establish({ name: 'one', pairs: [{ source: 'x', target: 'z' }] } as never))).toBe('already-exists');
    expect(await problemOf(engine.deleteVolume('y'))).toBe('volume-busy');
    expect(await problemOf(engine.resizeVolume('x', 32 * TRACK))).toBe('volume-busy');
    expect(flash.list().map((s) => s.name)).toEqual(['one']);
    const withdrawn = await flash.withdraw('one', { finishCopy: false });
    expect(withdrawn.state).toBe('stopped');
    expect(withdrawn.withdrawnAt).toBeTruthy();
    await engine.deleteVolume('y');
    await flash.remove('one');
    expect(await problemOf(() => flash.get('one'))).toBe('not-found');
  });

  it('write-inhibits the target through the splitter while the relationship exists', async () => {
    const root = await freshRoot();
    const { engine, flash } = await openAgent(root);
    await engine.createVolume('p', 16 * TRACK);
    await engine.createVolume('q', 16 * TRACK);
    await flash.establish({ name: 'wi', pairs: [{ source: 'p', target: 'q' }], writeInhibitTarget: true, backgroundCopy: false } as never);
    const target = new Splitter(engine.device('q'), [flash]);
    const source = new Splitter(engine.device('p'), [flash]);
    expect(await problemOf(target.write(0, filled(1, 512)))).toBe('read-only');
    await source.write(0, filled(1, 512));
    await flash.withdraw('wi', { finishCopy: false });
    await target.write(0, filled(2, 512));
  });

  it('withdraw with finishCopy stops only once the copy completed', async () => {
    const root = await freshRoot();
    const { engine, flash } = await openAgent(root);
    await engine.createVolume('m', 64 * TRACK);
    await engine.createVolume('n', 64 * TRACK);
    await engine.device('m').write(0, filled(5, 64 * TRACK));
    await flash.establish({ name: 'fin', pairs: [{ source: 'm', target: 'n' }], backgroundCopy: false } as never);
    const stopping = await flash.withdraw('fin', { finishCopy: true });
    expect(stopping.state).toBe('stopping');
    await waitFor(() => flash.get('fin').withdrawnAt != null);
    const done = flash.get('fin');
    expect(done.state).toBe('idle-copied');
    expect(done.pairs[0].copiedTracks).toBe(64);
  });

  it('an establish whose flash record never became durable leaves nothing behind after a crash', async () => {
    const root = await freshRoot();
    const agent = await openAgent(root);
    await agent.engine.createVolume('c1', 16 * TRACK);
    await agent.engine.createVolume('c2', 16 * TRACK);
    await agent.engine.device('c1').write(0, filled(1, TRACK));
    await agent.engine.device('c2').write(0, filled(2, TRACK));
    await agent.engine.flush();
    // Hold c2's writes elsewhere so the establish stays preparing, then crash.
    const release = await agent.engine.holdWrites(['c2'], 1000);
    const pending = agent.flash.establish({ name: 'cut', pairs: [{ source: 'c1', target: 'c2' }], holdTimeoutMs: 1500 } as never);
    await waitFor(() => agent.flash.list().some((s) => s.name === 'cut'));
    expect(agent.flash.get('cut').state).toBe('preparing');
    await crash(agent);
    release();
    await pending.catch(() => {});
    const again = await openAgent(root);
    expect(again.flash.list()).toEqual([]);
    expect((await read(again.engine, 'c2', 0, TRACK)).equals(filled(2, TRACK))).toBe(true);
  });

  it('an established session survives a crash: relationship, change recording and copy state', async () => {
    const root = await freshRoot();
    const agent = await openAgent(root);
    await agent.engine.createVolume('d1', 32 * TRACK);
    await agent.engine.createVolume('d2', 32 * TRACK);
    await agent.engine.device('d1').write(0, filled(1, 32 * TRACK));
    const image = await read(agent.engine, 'd1');
    await agent.flash.establish({ name: 'keep', pairs: [{ source: 'd1', target: 'd2' }], incremental: true, backgroundCopy: false } as never);
    await agent.engine.device('d1').write(3 * TRACK, filled(8, 10), { fua: true });
    await crash(agent);
    expect((await checkDataDir(root)).problems).toEqual([]);
    const again = await openAgent(root);
    const info = again.flash.get('keep');
    expect(info.state).toBe('copying');
    expect(info.pairs[0].changedTracks).toEqual({ source: 1, target: 0 });
    expect((await read(again.engine, 'd2')).equals(image)).toBe(true);
    // Change recording is armed again after the restart.
    await again.engine.device('d2').write(7 * TRACK, filled(9, 10));
    expect(again.flash.get('keep').pairs[0].changedTracks).toEqual({ source: 1, target: 1 });
  });
});

describe('flash records across a crash', () => {
  it('a two-pair flash record torn at any byte applies to both pairs or to neither', async () => {
    const root = await freshRoot();
    let engine = await StorageEngine.open(root);
    for (const name of ['a', 'b', 'c', 'd']) await engine.createVolume(name, 16 * TRACK);
    await engine.device('a').write(0, filled(1, 4 * TRACK));
    await engine.device('c').write(TRACK, filled(3, 4 * TRACK));
    await engine.device('b').write(0, filled(2, TRACK));
    await engine.device('d').write(0, filled(4, TRACK));
    await engine.close();
    const images: Record<string, Buffer> = {};
    engine = await StorageEngine.open(root);
    for (const name of ['a', 'b', 'c', 'd']) images[name] = await read(engine, name);
    await engine.close();
    for (const keepBytes of [0, 8, 20, 40, 60, 1000]) {
      engine = await StorageEngine.open(root);
      const release = await engine.holdWrites(['a', 'b', 'c', 'd'], 1000);
      const id = (name: string) => engine.volumeId(name);
      engine.logFlash([
        { op: 'clone', source: id('a'), target: id('b'), track: 0, count: 16 },
        { op: 'create-bitmap', bitmap: engine.reserveBitmapId(), volume: id('b') },
        { op: 'clone', source: id('c'), target: id('d'), track: 0, count: 16 },
      ]);
      release();
      await engine.abandonForCrashTest(keepBytes);
      expect((await checkDataDir(root)).problems).toEqual([]);
      engine = await StorageEngine.open(root);
      const b = await read(engine, 'b');
      const d = await read(engine, 'd');
      const applied = b.equals(images.a) && d.equals(images.c);
      const untouched = b.equals(images.b) && d.equals(images.d);
      expect(applied || untouched, `keepBytes ${keepBytes}: both pairs or neither`).toBe(true);
      if (keepBytes >= 1000) expect(applied).toBe(true);
      if (keepBytes < 60) expect(untouched).toBe(true);
      // Start the next round from the untouched images again.
      if (applied) {
        await engine.device('b').write(0, images.b);
        await engine.device('d').write(0, images.d);
      }
      await engine.close();
    }
  });

  it('an establish durable in the journal but still preparing in the catalog is completed at start', async () => {
    const root = await freshRoot();
    const agent = await openAgent(root);
    await agent.engine.createVolume('e1', 16 * TRACK);
    await agent.engine.createVolume('e2', 16 * TRACK);
    await agent.engine.device('e1').write(0, filled(6, 16 * TRACK));
    await agent.flash.establish({ name: 'half', pairs: [{ source: 'e1', target: 'e2' }], backgroundCopy: false } as never);
    // As if the crash came between the journal commit and the catalog update.
    agent.engine.catalog.db.prepare("UPDATE flash_sessions SET state = 'preparing' WHERE name = 'half'").run();
    await crash(agent);
    const again = await openAgent(root);
    expect(again.flash.get('half').state).toBe('copying');
    expect((await read(again.engine, 'e2')).equals(filled(6, 16 * TRACK))).toBe(true);
    expect(await problemOf(again.engine.deleteVolume('e2'))).toBe('volume-busy');
  });
});
