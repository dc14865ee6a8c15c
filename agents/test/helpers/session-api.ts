import { PairBitmapSchema, SessionInfoSchema, type SessionInfo, type SessionType } from '@tandem/contract';
import type { AgentProcess } from './agent-process.ts';

/** Sessions of real agent processes through their control API (faster than the CLI: no process start per call). */

export const sessionPath = (name: string): string => `/v1/sessions/${encodeURIComponent(name)}`;

export function showSession(agent: AgentProcess, name: string): Promise<SessionInfo> {
  return agent.api.call('GET', sessionPath(name), SessionInfoSchema);
}

/** Polls `probe` (an answer that throws counts as not yet) until it returns something truthy; fails after the deadline. */
export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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
