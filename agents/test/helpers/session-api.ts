import { PairBitmapSchema, type SessionType } from '@tandem/contract';
import type { AgentProcess } from './agent-process.ts';
import { sessionPath, showSession, until as pollUntil } from './session-views.ts';

/** Sessions of real agent processes through their control API (faster than the CLI: no process start per call). */

// The API views and the polling live in session-views.ts (one copy); these tests wait longer by default (writers under kill -9).
export { sessionPath, showSession } from './session-views.ts';

/** Polls `probe` (an answer that throws counts as not yet) until it returns something truthy; fails after the deadline (90 s by default). */
export function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 90_000): Promise<T> {
  return pollUntil(what, probe, timeoutMs);
}

/** Prepared at `source`, with the raw out-of-sync bitmap of the copy set of `volume` empty there (nothing marked, nothing on its way). */
export async function untilDrained(source: AgentProcess, name: string, volume: string, timeoutMs = 120_000): Promise<void> {
  await until(
    `${name} prepared with nothing marked`,
    async () => {
      const session = await showSession(source, name);
      if (session.state !== 'prepared') return false;
      const bitmap = await source.api.call('GET', `${sessionPath(name)}/pairs/${volume}/bitmap`, PairBitmapSchema);
      return bitmap.markedTracks === 0;
    },
    timeoutMs,
  );
}

/** Volumes of `sizeMiB` at both agents, a session of one copy set defined at `h1` with `h2Site` (the site name of `h2`), and started. */
export async function startOneCopySet(
  h1: AgentProcess,
  h2: AgentProcess,
  options: { name: string; type: SessionType; h2Site: string; volume: string; copy: string; sizeMiB?: number },
): Promise<void> {
  const sizeBytes = (options.sizeMiB ?? 64) * 1024 * 1024;
  await h1.api.call('POST', '/v1/volumes', null, { name: options.volume, sizeBytes });
  await h2.api.call('POST', '/v1/volumes', null, { name: options.copy, sizeBytes });
  await h1.api.call('POST', '/v1/sessions', null, { name: options.name, type: options.type, peer: options.h2Site });
  await h1.api.call('POST', `${sessionPath(options.name)}/pairs`, null, { h1Volume: options.volume, h2Volume: options.copy });
  await h1.api.call('POST', `${sessionPath(options.name)}/actions/start`, null, {});
}
