import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CdpJournal } from '../src/cdp/journal.ts';
import { checkDataDir } from '../src/storage/check.ts';
import { StorageEngine } from '../src/storage/engine.ts';
import { initDataDir } from '../src/storage/init.ts';
import { CRASH_TRACK, CRASH_VOLUME_BYTES, crashWrite } from './helpers/cdp-crash-writer.ts';

/**
 * kill -9 of a process appending to a CDP journal while distribution and
 * retention race the appends: the pool must check clean, every acknowledged
 * write and every acknowledged point (not released by a retention asked for
 * before the kill) must be there, and every point's image (and the head)
 * must read exactly the writes up to it.
 */

const agentsDir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

function contentAfter(writes: number): Buffer {
  const content = Buffer.alloc(CRASH_VOLUME_BYTES);
  for (let index = 1; index <= writes; index++) {
    const { offset, data } = crashWrite(index);
    data.copy(content, offset);
  }
  return content;
}

async function runAndKill(dataDir: string, acksBeforeKill: number): Promise<string[]> {
  const child = spawn(process.execPath, [path.join(agentsDir, 'bin/run-ts.mjs'), path.join(agentsDir, 'test/helpers/cdp-crash-writer.ts'), dataDir], {
    cwd: agentsDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let partial = '';
  let acks = 0;
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const complete = partial.split('\n');
      partial = complete.pop()!;
      for (const line of complete) {
        lines.push(line);
        if (line.startsWith('ack ') && ++acks >= acksBeforeKill) {
          child.kill('SIGKILL');
          resolve();
        }
      }
    });
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`the writer exited early (${code}): ${stderr}`));
    });
  });
  await exited;
  return lines;
}

describe('kill -9 of a process appending to a CDP journal', () => {
  for (const acksBeforeKill of [150, 600]) {
    it(`loses no acknowledged write or point (killed after ${acksBeforeKill} acks)`, async () => {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-cdp-kill-'));
      roots.push(root);
      await initDataDir(root, { site: 'cdp', trackSize: CRASH_TRACK });
      const setup = await StorageEngine.open(root);
      await setup.createVolume('replica', CRASH_VOLUME_BYTES);
      expect((await CdpJournal.create(setup, ['replica'])).id).toBe(1);
      await setup.close();

      const lines = await runAndKill(root, acksBeforeKill);
      const acked = Math.max(...lines.filter((l) => l.startsWith('ack ')).map((l) => Number(l.split(' ')[1])));
      const points = lines.filter((l) => l.startsWith('point ')).map((l) => l.split(' ').map(Number)).map(([, seq, writes]) => ({ seq, writes }));
      const releasedBelow = Math.max(0, ...lines.filter((l) => l.startsWith('releasing ')).map((l) => Number(l.split(' ')[1])));

      const report = await checkDataDir(root);
      expect(report.problems, 'offline check after kill -9').toEqual([]);
      const engine = await StorageEngine.open(root);
      try {
        const journal = CdpJournal.open(engine, 1);
        const volume = engine.volumeId('replica');
        expect(journal.meta.lastSeq, 'every acknowledged write is there').toBeGreaterThanOrEqual(acked);
        const recovered = journal.points();
        const undistributed = journal.meta.pending.length;
        for (const point of points) {
          expect(point.seq, 'a point holds the writes asked before it').toBe(point.writes);
          if (point.seq >= releasedBelow) expect(recovered.map((p) => p.seq), `acknowledged point ${point.seq}`).toContain(point.seq);
        }
        for (const point of [...recovered, { seq: journal.meta.lastSeq, timeMs: 0, name: null }]) {
          const image = journal.openImage(point.seq);
          const actual = Buffer.alloc(CRASH_VOLUME_BYTES);
          await image.read(volume, 0, actual);
          await image.close();
          expect(actual.equals(contentAfter(point.seq)), `image at ${point.seq}`).toBe(true);
        }
        // Distribution finishes after recovery: the replica holds every write that survived.
        await journal.distribute({ durable: true });
        const replica = Buffer.alloc(CRASH_VOLUME_BYTES);
        await engine.device('replica').readInto(0, replica);
        expect(replica.equals(contentAfter(journal.meta.lastSeq))).toBe(true);
        console.log(`killed after ${acked} acknowledged writes; recovered ${journal.meta.lastSeq} records, ${recovered.length} points, ${undistributed} track entries undistributed at recovery; WAL records replayed ${engine.recovery.replayedRecords}, torn bytes ${engine.recovery.tornBytes}`);
      } finally {
        await engine.close();
      }
      expect((await checkDataDir(root)).problems).toEqual([]);
    });
  }
});
