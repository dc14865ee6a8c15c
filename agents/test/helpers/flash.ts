/**
 * Flash copy through a real agent's control API and real NBD clients:
 * establish/get/poll, images read with nbdcopy, expected images built in
 * memory from the writes a test made.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FlashSessionInfoSchema, FlashTrackMapSchema, type EstablishFlashRequest, type FlashSessionInfo, type FlashTrackMap } from '@tandem/contract';
import type { AgentProcess } from './agent-process.ts';
import { run, runOk } from './nbd-harness.ts';

export { qemuIo } from './nbd-harness.ts';

/** A qemu-io pattern write `write -P byte offset length`, kept so the expected image can be built. */
export type PatternWrite = [byte: number, offset: number, length: number];

export function patternCommands(writes: PatternWrite[]): string[] {
  return writes.map(([byte, offset, length]) => `write -P ${byte} ${offset} ${length}`);
}

/** Applies pattern writes to an image in memory. */
export function applyPatterns(image: Buffer, writes: PatternWrite[]): Buffer {
  for (const [byte, offset, length] of writes) image.fill(byte, offset, offset + length);
  return image;
}

/** Reads a whole export with nbdcopy into a file next to the data dir; returns its bytes. */
export async function readExport(agent: AgentProcess, volume: string, file: string): Promise<Buffer> {
  const target = path.join(path.dirname(agent.dataDir), file);
  await runOk('nbdcopy', [agent.nbdUri(volume), target], 120_000);
  return readFile(target);
}

/** Writes `expected` to a file and compares it with an export using nbdcopy + `qemu-img compare`; returns compare's output on a difference, null when equal. */
export async function compareExport(agent: AgentProcess, volume: string, expected: Buffer, tag: string): Promise<string | null> {
  const dir = path.dirname(agent.dataDir);
  const expectedFile = path.join(dir, `${tag}-expected.raw`);
  const actualFile = path.join(dir, `${tag}-actual.raw`);
  await writeFile(expectedFile, expected);
  await runOk('nbdcopy', [agent.nbdUri(volume), actualFile], 120_000);
  const compared = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', expectedFile, actualFile]);
  return compared.code === 0 ? null : `${volume}: ${compared.stdout.trim()} ${compared.stderr.trim()}`;
}

export async function establish(agent: AgentProcess, request: Partial<EstablishFlashRequest> & Pick<EstablishFlashRequest, 'pairs'>): Promise<FlashSessionInfo> {
  return agent.api.call('POST', '/v1/flash-sessions', FlashSessionInfoSchema, request);
}

export async function flashSession(agent: AgentProcess, name: string): Promise<FlashSessionInfo> {
  return agent.api.call('GET', `/v1/flash-sessions/${encodeURIComponent(name)}`, FlashSessionInfoSchema);
}

export async function flashTrackMap(agent: AgentProcess, name: string, pair: string, query: string): Promise<FlashTrackMap> {
  return agent.api.call('GET', `/v1/flash-sessions/${encodeURIComponent(name)}/pairs/${encodeURIComponent(pair)}/track-map?${query}`, FlashTrackMapSchema);
}

/** Copied tracks over every pair of a session. */
export function copiedTracks(session: FlashSessionInfo): number {
  return session.pairs.reduce((sum, pair) => sum + pair.copiedTracks, 0);
}

/** Polls a session until `done` says so; returns every sample with the Date.now() its answer arrived. */
export async function pollSession(
  agent: AgentProcess,
  name: string,
  done: (session: FlashSessionInfo) => boolean,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<Array<{ at: number; session: FlashSessionInfo }>> {
  const started = Date.now();
  const samples: Array<{ at: number; session: FlashSessionInfo }> = [];
  for (;;) {
    const session = await flashSession(agent, name);
    samples.push({ at: Date.now(), session });
    if (done(session)) return samples;
    if (Date.now() - started > (options.timeoutMs ?? 60_000)) {
      throw new Error(`flash session ${name} did not reach the expected state; last: ${JSON.stringify(session)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}

/** Fills a volume over NBD from a random file (every track allocated); returns the bytes written. */
export async function fillRandom(agent: AgentProcess, volume: string, bytes: Buffer, tag: string): Promise<void> {
  const file = path.join(path.dirname(agent.dataDir), `${tag}-fill.raw`);
  await writeFile(file, bytes);
  await runOk('nbdcopy', [file, agent.nbdUri(volume)], 120_000);
}
