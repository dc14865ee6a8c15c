import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ProblemError } from '@tandem/contract';
import { Splitter } from '../write-path/splitter.ts';
import { checkDataDir } from '../storage/check.ts';
import { StorageEngine } from '../storage/engine.ts';
import { initDataDir } from '../storage/init.ts';
import type { VolumeDevice } from '../storage/volume-device.ts';
import { FlashService } from './service.ts';

/**
 * Consistent groups: several pairs flashed at one point in time while
 * writers keep writing (their writes are queued, never failed), a hold
 * timeout that changes nothing, and establish time flat in volume size.
 */

const TRACK = 65536;
let root = '';
let engine: StorageEngine | null = null;
let flash: FlashService | null = null;

afterEach(async () => {
  await flash?.close().catch(() => {});
  await engine?.close().catch(() => {});
  flash = null;
  engine = null;
  if (root) await fs.rm(root, { recursive: true, force: true });
  root = '';
});

async function start(): Promise<{ engine: StorageEngine; flash: FlashService }> {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-flash-group-'));
  await initDataDir(root, { site: 'group', trackSize: TRACK });
  engine = await StorageEngine.open(root);
  flash = new FlashService({ engine, logger: pino({ level: 'silent' }) });
  flash.start();
  return { engine, flash };
}

const SOURCES = ['g1', 'g2', 'g3'];
const TARGETS = ['t1', 't2', 't3'];
const WRITERS = 4;

/** Each writer stamps its counter into g1, then g2, then g3 (each write waits for the one before). */
function startWriters(devices: Splitter[]): { stop: () => Promise<{ rounds: number; errors: unknown[] }> } {
  let running = true;
  let rounds = 0;
  const errors: unknown[] = [];
  const loops = Array.from({ length: WRITERS }, async (_, writer) => {
    const stamp = Buffer.alloc(4096);
    for (let counter = 1; running; counter++) {
      stamp.writeBigUInt64LE(BigInt(counter), 0);
      try {
        for (const device of devices) await device.write(writer * 7 * TRACK + 4096 * writer, stamp);
      } catch (error) {
        errors.push(error);
        return;
      }
      rounds++;
      // Small writes complete synchronously (page cache); let timers run as a socket would.
      await new Promise((resolve) => setImmediate(resolve));
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { rounds, errors };
    },
  };
}

async function stampOf(engine: StorageEngine, volume: string, writer: number): Promise<bigint> {
  const out = Buffer.alloc(8);
  await engine.device(volume).readInto(writer * 7 * TRACK + 4096 * writer, out);
  return out.readBigUInt64LE(0);
}

describe('flash copy consistent groups', () => {
  it('flashes three volumes at one point in time while writers keep writing; targets satisfy the dependent-write order', async () => {
    const { engine, flash } = await start();
    for (const name of [...SOURCES, ...TARGETS]) await engine.createVolume(name, 64 * TRACK);
    const devices = SOURCES.map((name) => new Splitter(engine.device(name), [flash]));
    for (let attempt = 0; attempt < 3; attempt++) {
      const writers = startWriters(devices);
      await new Promise((resolve) => setTimeout(resolve, 150));
      const name = `cg${attempt}`;
      const info = await flash.establish({
        name,
        pairs: SOURCES.map((source, i) => ({ source, target: TARGETS[i] })),
        backgroundCopy: attempt === 1,
      } as never);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const { rounds, errors } = await writers.stop();
      expect(errors, 'writes during the hold are queued, not failed').toEqual([]);
      expect(rounds).toBeGreaterThan(0);
      expect(info.holdMs).not.toBeNull();
      let progressed = 0;
      for (let writer = 0; writer < WRITERS; writer++) {
        const [a, b, c] = await Promise.all(TARGETS.map((target) => stampOf(engine, target, writer)));
        // A consistent cut of g1 -> g2 -> g3 writes: a >= b >= c and a <= c + 1.
        expect(a >= b && b >= c && a <= c + 1n, `writer ${writer}: targets hold ${a}, ${b}, ${c}`).toBe(true);
        if ((await stampOf(engine, 'g1', writer)) > a) progressed++;
      }
      expect(progressed, 'the sources moved on after the point in time').toBeGreaterThan(0);
      await flash.withdraw(name, { finishCopy: false });
      await flash.remove(name);
    }
    await engine.close();
    expect((await checkDataDir(root)).problems).toEqual([]);
  });

  it('a write stuck holding its range lock makes the establish time out; nothing is established and writes flow again', async () => {
    const { engine, flash } = await start();
    for (const name of [...SOURCES, ...TARGETS]) await engine.createVolume(name, 64 * TRACK);
    for (const name of [...SOURCES, ...TARGETS]) await engine.device(name).write(0, Buffer.alloc(TRACK, name.charCodeAt(0) + Number(name[1])));
    const before = await Promise.all(TARGETS.map(async (name) => {
      const out = Buffer.alloc(TRACK);
      await engine.device(name).readInto(0, out);
      return out;
    }));
    // A write in flight on g3 that does not finish (it holds track 5).
    const stuck = await (engine.device('g3') as VolumeDevice).lock.acquire(5, 6);
    const writers = startWriters(SOURCES.slice(0, 2).map((name) => new Splitter(engine.device(name), [flash])));
    const started = performance.now();
    let problem = '';
    try {
      await flash.establish({ name: 'late', pairs: SOURCES.map((source, i) => ({ source, target: TARGETS[i] })), holdTimeoutMs: 200 } as never);
    } catch (error) {
      problem = error instanceof ProblemError ? error.problem : String(error);
    }
    const elapsed = performance.now() - started;
    expect(problem).toBe('timeout');
    expect(elapsed).toBeLessThan(5000);
    // Writes to the other sources were only queued meanwhile and flow again.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { rounds, errors } = await writers.stop();
    expect(errors).toEqual([]);
    expect(rounds).toBeGreaterThan(0);
    expect(flash.list()).toEqual([]);
    for (const [i, name] of TARGETS.entries()) {
      const out = Buffer.alloc(TRACK);
      await engine.device(name).readInto(0, out);
      expect(out.equals(before[i]), `${name} unchanged`).toBe(true);
    }
    const events = engine.catalog.listEvents(0, 1000).map((event) => event.type);
    expect(events).toContain('flash.hold-timeout');
    expect(events).not.toContain('flash.established');
    (engine.device('g3') as VolumeDevice).lock.release(stuck);
    // Nothing left over: the same group establishes now.
    const info = await flash.establish({ name: 'late', pairs: SOURCES.map((source, i) => ({ source, target: TARGETS[i] })) } as never);
    expect(info.pairs).toHaveLength(3);
  });

  it('establish time is flat in volume size: 1 GiB and 1 TiB sparse', async () => {
    const { engine, flash } = await start();
    const GiB = 1024 ** 3;
    const figures: Record<string, number> = {};
    for (const [label, size] of [['1GiB', GiB], ['1TiB', 1024 * GiB]] as const) {
      await engine.createVolume(`src-${label}`, size);
      await engine.createVolume(`tgt-${label}`, size);
      // Sparse: a few tracks spread over the whole volume.
      for (let i = 0; i < 16; i++) await engine.device(`src-${label}`).write(Math.floor((size / 16) * i), Buffer.alloc(TRACK, i + 1));
      await engine.flush();
      const started = performance.now();
      const info = await flash.establish({ name: `flat-${label}`, pairs: [{ source: `src-${label}`, target: `tgt-${label}` }], backgroundCopy: false } as never);
      figures[label] = performance.now() - started;
      expect(info.pairs[0].copiedTracks).toBe(size / TRACK - 16);
      const out = Buffer.alloc(TRACK);
      await engine.device(`tgt-${label}`).readInto(Math.floor((size / 16) * 15), out);
      expect(out.equals(Buffer.alloc(TRACK, 16))).toBe(true);
    }
    // Loose bounds (the benchmark measures precisely): both fast, and 1 TiB not ~1000x 1 GiB.
    expect(figures['1GiB'], JSON.stringify(figures)).toBeLessThan(200);
    expect(figures['1TiB'], JSON.stringify(figures)).toBeLessThan(200);
  });
});
