import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDataDir } from '../storage/check.ts';
import { StorageEngine } from '../storage/engine.ts';
import { initDataDir } from '../storage/init.ts';
import { CHUNK_TRACKS } from '../storage/metadata.ts';
import { Model, pattern } from '../storage/reference-model.ts';
import { FlashService } from './service.ts';

/**
 * Flash copy against the reference model: random interleavings of writes
 * and trims on sources and targets, background copy (the service's own,
 * running concurrently, plus explicit steps), establish of a two-pair
 * consistent group, incremental or full refresh, reverse restore,
 * withdraw, clean restarts and crashes with torn WAL tails. Targets and
 * sources must always read what the model says: the point-in-time image
 * plus later writes. An incremental refresh that missed a changed track
 * (a lost change mark) leaves the target different from its source and
 * fails here; so does a source write that lands in an extent the target
 * still shares.
 */

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

const VOLUMES = ['A', 'B', 'C', 'D'] as const;
/** The group: A -> B and C -> D. */
const PAIRS = [
  { source: 'A', target: 'B' },
  { source: 'C', target: 'D' },
];

type Op =
  | { kind: 'write'; volume: number; offset: number; length: number; seed: number; fua: boolean }
  | { kind: 'trim'; volume: number; offset: number; length: number }
  | { kind: 'establish'; incremental: boolean; backgroundCopy: boolean }
  | { kind: 'refresh' }
  | { kind: 'reverse' }
  | { kind: 'copy-step'; pair: number; track: number; count: number }
  | { kind: 'withdraw'; finishCopy: boolean }
  | { kind: 'pause'; paused: boolean }
  | { kind: 'read'; volume: number; offset: number; length: number }
  | { kind: 'flush' }
  | { kind: 'restart' }
  | { kind: 'crash'; keepBytes: number };

function opArb(trackSize: number, bigTracks: number): fc.Arbitrary<Op> {
  const big = bigTracks * trackSize;
  const offsetArb = fc.oneof(
    fc.nat({ max: 40 * trackSize }),
    fc.integer({ min: (CHUNK_TRACKS - 3) * trackSize, max: (CHUNK_TRACKS + 3) * trackSize }),
    fc.nat({ max: big - 1 }),
  );
  return fc.oneof(
    {
      weight: 12,
      arbitrary: fc.record({
        kind: fc.constant('write' as const),
        volume: fc.nat(3),
        offset: offsetArb,
        length: fc.oneof(fc.integer({ min: 1, max: trackSize }), fc.integer({ min: 1, max: 6 * trackSize })),
        seed: fc.nat(255),
        fua: fc.boolean(),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('trim' as const), volume: fc.nat(3), offset: offsetArb, length: fc.integer({ min: 1, max: 8 * trackSize }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('establish' as const), incremental: fc.boolean(), backgroundCopy: fc.boolean() }) },
    { weight: 3, arbitrary: fc.constant({ kind: 'refresh' as const }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'reverse' as const }) },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('copy-step' as const), pair: fc.nat(1), track: offsetArb.map((o) => Math.floor(o / trackSize)), count: fc.integer({ min: 1, max: 64 }) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('withdraw' as const), finishCopy: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('pause' as const), paused: fc.boolean() }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('read' as const), volume: fc.nat(3), offset: offsetArb, length: fc.integer({ min: 1, max: 4 * trackSize }) }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'flush' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash' as const), keepBytes: fc.oneof(fc.constant(0), fc.nat(400)) }) },
  );
}

async function run(trackSize: number, bigTracks: number, ops: Op[]): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-flash-model-'));
  roots.push(root);
  await initDataDir(root, { site: 'flash-model', trackSize });
  const logger = pino({ level: 'silent' });
  let engine = await StorageEngine.open(root);
  let flash = new FlashService({ engine, logger });
  flash.start();
  const model = new Model(trackSize);
  const sizes: Record<string, number> = { A: bigTracks * trackSize, B: bigTracks * trackSize, C: 300 * trackSize + 4096, D: 300 * trackSize + 4096 };
  for (const name of VOLUMES) {
    await engine.createVolume(name, sizes[name]);
    model.volumes.set(name, { size: sizes[name], tracks: new Map(), versions: new Map() });
  }
  let counter = 0;
  /** The live session's name, or null. */
  let session: string | null = null;
  const clamp = (name: string, offset: number, length: number): [number, number] => {
    const size = sizes[name];
    const start = Math.min(offset, size - 1);
    return [start, Math.max(1, Math.min(length, size - start))];
  };
  const copyImage = (from: string, to: string) => {
    model.volumes.get(to)!.tracks = new Map(model.volumes.get(from)!.tracks);
  };
  const verifyAll = async (when: string) => {
    for (const name of VOLUMES) {
      const actual = Buffer.alloc(sizes[name]);
      await engine.device(name).readInto(0, actual);
      expect(actual.equals(model.read(name, 0, sizes[name])), `${name} matches the model (${when})`).toBe(true);
    }
  };
  const live = () => (session ? flash.get(session) : null);

  try {
    for (const op of ops) {
      switch (op.kind) {
        case 'write': {
          const name = VOLUMES[op.volume];
          const [offset, length] = clamp(name, op.offset, op.length);
          const data = pattern(op.seed, length, counter++);
          await engine.device(name).write(offset, data, { fua: op.fua });
          model.write(name, offset, data, length);
          if (op.fua) model.durable();
          break;
        }
        case 'trim': {
          const name = VOLUMES[op.volume];
          const [offset, length] = clamp(name, op.offset, op.length);
          await engine.device(name).trim(offset, length);
          model.write(name, offset, null, length);
          break;
        }
        case 'establish': {
          if (session && !live()!.withdrawnAt) break;
          if (session) await flash.remove(session);
          session = `s${counter++}`;
          await flash.establish({ name: session, pairs: PAIRS, incremental: op.incremental, backgroundCopy: op.backgroundCopy } as never);
          for (const pair of PAIRS) copyImage(pair.source, pair.target);
          model.durable();
          break;
        }
        case 'refresh':
        case 'reverse': {
          const info = live();
          if (!info || info.withdrawnAt || !['copying', 'idle-copied', 'suspended'].includes(info.state)) break;
          if (op.kind === 'refresh') {
            await flash.refresh(session!, { holdTimeoutMs: 10_000 });
            for (const pair of PAIRS) copyImage(pair.source, pair.target);
          } else {
            await flash.reverse(session!, { holdTimeoutMs: 10_000 });
            for (const pair of PAIRS) copyImage(pair.target, pair.source);
          }
          model.durable();
          break;
        }
        case 'copy-step': {
          // A background copy step of our own: content must not change.
          const pair = PAIRS[op.pair];
          const tracks = Math.ceil(sizes[pair.target] / trackSize);
          const track = Math.min(op.track, tracks - 1);
          await engine.unshareTracks(pair.target, pair.source, track, track + op.count);
          break;
        }
        case 'withdraw': {
          const info = live();
          if (!info || info.withdrawnAt || info.state === 'stopping') break;
          const after = await flash.withdraw(session!, { finishCopy: op.finishCopy });
          // A withdraw that must finish the copy first returns at once ('stopping'): the copy and the withdraw's
          // commit run in the background, so the call is a durable point only when it withdrew.
          if (after.withdrawnAt) model.durable();
          break;
        }
        case 'pause': {
          const info = live();
          if (!info || info.withdrawnAt || info.state === 'stopping') break;
          await flash.update(session!, { paused: op.paused });
          break;
        }
        case 'read': {
          const name = VOLUMES[op.volume];
          const [offset, length] = clamp(name, op.offset, op.length);
          const actual = Buffer.alloc(length);
          await engine.device(name).readInto(offset, actual);
          expect(actual.equals(model.read(name, offset, length)), `read ${length}@${offset} of ${name}`).toBe(true);
          break;
        }
        case 'flush':
          await engine.flush();
          model.durable();
          break;
        case 'restart':
          await flash.close();
          await engine.close();
          engine = await StorageEngine.open(root);
          flash = new FlashService({ engine, logger });
          flash.start();
          model.durable();
          await verifyAll('after a restart');
          break;
        case 'crash': {
          await flash.close();
          await engine.abandonForCrashTest(op.keepBytes);
          const report = await checkDataDir(root);
          expect(report.problems, 'offline check after a crash').toEqual([]);
          engine = await StorageEngine.open(root);
          flash = new FlashService({ engine, logger });
          flash.start();
          const unmatched = await model.afterCrash((name, offset, into) => engine.device(name).readInto(offset, into));
          expect(unmatched, 'every track after a crash holds one of its versions since the last durable point').toEqual([]);
          await verifyAll('after a crash');
          break;
        }
      }
    }
    await verifyAll('at the end');
    // A final refresh of a live session must leave every target equal to its source.
    const info = live();
    if (info && !info.withdrawnAt && ['copying', 'idle-copied', 'suspended'].includes(info.state)) {
      await flash.refresh(session!, { holdTimeoutMs: 10_000 });
      for (const pair of PAIRS) copyImage(pair.source, pair.target);
      await verifyAll('after the final refresh');
    }
    await flash.close();
    await engine.close();
    const report = await checkDataDir(root);
    expect(report.problems).toEqual([]);
  } finally {
    await flash.close().catch(() => {});
    await engine.close().catch(() => {});
    await fs.rm(root, { recursive: true, force: true });
  }
}

describe('flash copy against a reference model', () => {
  it('4 KiB tracks, volumes over two chunks: sources and targets read what the model says across restarts and crashes', async () => {
    const bigTracks = 2 * CHUNK_TRACKS + 100;
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb(4096, bigTracks), { minLength: 5, maxLength: 40 }).map((ops) => [
          { kind: 'write', volume: 0, offset: 0, length: 20_000, seed: 1, fua: false } as Op,
          { kind: 'establish', incremental: true, backgroundCopy: false } as Op,
          ...ops,
        ]),
        (ops) => run(4096, bigTracks, ops),
      ),
      { numRuns: 25 },
    );
    // 25 runs take 30-70 s here, more on a loaded 2-core CI machine: the agents' 120 s default once cut it short.
  }, 600_000);

  // Found by the CI dry run of 2026-12-07 (fast-check seed -1906848122), shrunk to this case. The model took a
  // withdraw finishing the copy as a durable point, but with tracks left to copy it returns at once in 'stopping'
  // and commits only when the background copy ends: the 1-byte write, not yet flushed, may be lost by the crash.
  it('kept case: a withdraw that still has to finish the copy is not a durable point', async () => {
    await run(4096, 2 * CHUNK_TRACKS + 100, [
      { kind: 'write', volume: 0, offset: 0, length: 20000, seed: 1, fua: false },
      { kind: 'establish', incremental: true, backgroundCopy: false },
      { kind: 'write', volume: 0, offset: 0, length: 1, seed: 0, fua: false },
      { kind: 'withdraw', finishCopy: true },
      { kind: 'establish', incremental: false, backgroundCopy: false },
      { kind: 'read', volume: 0, offset: 0, length: 1 },
      { kind: 'crash', keepBytes: 0 },
    ] as Op[]);
  });

  it('64 KiB tracks: the same with a rate-free background copy racing the writes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb(65536, 48), { minLength: 5, maxLength: 50 }).map((ops) => [
          { kind: 'establish', incremental: true, backgroundCopy: true } as Op,
          ...ops,
        ]),
        (ops) => run(65536, 48, ops),
      ),
      { numRuns: 30 },
    );
  }, 600_000);
});

describe('flash copy cases worth keeping', () => {
  it('a change mark of an in-place overwrite is durable before the data (else a crash hides the change from refresh)', async () => {
    // After the copy step and the flush, A's track 0 is A's alone, so the
    // next write overwrites it in place: no mapping record follows the mark,
    // so only committing the mark first keeps the crash from forgetting it.
    await run(65536, 48, [
      { kind: 'write', volume: 0, offset: 0, length: 65536, seed: 1, fua: false },
      { kind: 'establish', incremental: true, backgroundCopy: false },
      { kind: 'copy-step', pair: 0, track: 0, count: 1 },
      { kind: 'flush' },
      { kind: 'write', volume: 0, offset: 100, length: 100, seed: 2, fua: false },
      { kind: 'crash', keepBytes: 0 },
    ]);
  });
});
