import { EventListSchema, SessionInfoSchema, type AgentEvent, type SessionInfo } from '@tandem/contract';
import { expect } from 'vitest';
import type { AgentProcess } from './agent-process.ts';
import { runCommand } from './run-command.ts';

/**
 * What an administrator sees of a session at an agent process, through the
 * API and through the CLI, and waiting for it (poll with a deadline; no
 * fixed sleeps).
 */

export const sessionPath = (name: string) => `/v1/sessions/${encodeURIComponent(name)}`;

/** `GET /v1/sessions/NAME`. */
export function showSession(agent: AgentProcess, name: string): Promise<SessionInfo> {
  return agent.api.call('GET', sessionPath(name), SessionInfoSchema);
}

/** `tandem-agent session show NAME` (text); throws unless it exits 0. */
export async function showSessionText(agent: AgentProcess, name: string): Promise<string> {
  const result = await agent.cli(['session', 'show', name]);
  if (result.code !== 0) throw new Error(`session show ${name} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** Events of a type (or family) about a subject, oldest first. */
export async function eventsAbout(agent: AgentProcess, type: string, subject: string): Promise<AgentEvent[]> {
  return (await agent.api.call('GET', `/v1/events?type=${type}&subject=${encodeURIComponent(subject)}&limit=1000`, EventListSchema)).events;
}

/** Polls `probe` until it returns something truthy (errors count as not yet); throws after the deadline with the last answer. */
export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until the API view of the session satisfies `check`; returns it. */
export function untilSession(agent: AgentProcess, name: string, what: string, check: (view: SessionInfo) => boolean, timeoutMs = 60_000): Promise<SessionInfo> {
  return until(what, async () => {
    const view = await showSession(agent, name);
    return check(view) ? view : null;
  }, timeoutMs);
}

/** The session's state and its transitions at `agent` stay as they are for `ms` (nothing flaps meanwhile). */
export async function staysPut(agent: AgentProcess, name: string, ms: number): Promise<void> {
  const transitions = (await eventsAbout(agent, 'session.state', name)).length;
  const state = (await showSession(agent, name)).state;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    expect((await showSession(agent, name)).state).toBe(state);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  expect((await eventsAbout(agent, 'session.state', name)).length, `no transitions of ${name}`).toBe(transitions);
}

/** qemu-io with one command against an NBD URI; must exit 0 and verify any pattern it reads. */
export async function qemuIo(uri: string, command: string): Promise<string> {
  const result = await runCommand('qemu-io', ['-f', 'raw', '-c', command, uri]);
  expect(result.code, result.out).toBe(0);
  expect(result.out).not.toMatch(/Pattern verification failed/);
  return result.out;
}

/** Two exports hold the same bytes (`qemu-img compare` over NBD). */
export async function sameBytes(left: string, right: string): Promise<void> {
  const result = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', left, right]);
  expect(result.code, result.out).toBe(0);
}

/** A sync/async session of one copy set `volume` -> `copy` (size MiB each), started and Prepared. */
export async function preparedSession(
  primary: AgentProcess,
  secondary: AgentProcess,
  name: string,
  type: 'sync' | 'semi-sync' | 'async',
  volume: string,
  copy: string,
  sizeMiB = 64,
): Promise<void> {
  const peer = await secondary.api.agentInfo();
  await primary.api.call('POST', '/v1/volumes', null, { name: volume, sizeBytes: sizeMiB * 1024 * 1024 });
  await secondary.api.call('POST', '/v1/volumes', null, { name: copy, sizeBytes: sizeMiB * 1024 * 1024 });
  await primary.api.call('POST', '/v1/sessions', null, { name, type, peer: peer.site });
  await primary.api.call('POST', `${sessionPath(name)}/pairs`, null, { h1Volume: volume, h2Volume: copy });
  await primary.api.call('POST', `${sessionPath(name)}/actions/start`, null, {});
  await untilSession(primary, name, `${name} prepared`, (view) => view.state === 'prepared');
}
