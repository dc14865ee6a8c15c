import type { AgentEvent } from '@tandem/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { FaultProxy } from './helpers/fault-proxy.ts';
import { agentCliJson, runCommand } from './helpers/run-command.ts';

/**
 * Copy sets added to and removed from running sessions, with three real
 * agent processes paired through the CLI: alpha (the control agent, primary of a),
 * bravo (another primary agent, b) and charlie (the secondary). Host writes
 * go through NBD with qemu-io at both primaries while copy sets come and go;
 * bytes are compared with qemu-img at both sites. Agents are killed with
 * SIGKILL while a copy set joins and must resume its copy (only what is still
 * marked) and join afterwards.
 */

interface PairJson {
  h1Volume: string;
  h2Volume: string;
  state: string;
  outOfSyncTracks: number;
  syncedPercent: number | null;
  primarySite?: string;
}

interface SessionJson {
  state: string;
  consistencyTime: string | null;
  pairs: PairJson[];
}

const MiB = 1024 * 1024;

/** The session as the agent reports it, through its API (fast enough to poll). */
async function show(agent: AgentProcess, session: string): Promise<SessionJson> {
  const response = await agent.api.request('GET', `/v1/sessions/${session}`);
  if (response.status !== 200) throw new Error(`GET /v1/sessions/${session} at ${agent.dataDir}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as SessionJson;
}

async function waitUntil(agent: AgentProcess, session: string, check: (info: SessionJson) => boolean, what: string, timeoutMs = 90_000): Promise<SessionJson> {
  const deadline = Date.now() + timeoutMs;
  let last: SessionJson | string = 'nothing yet';
  for (;;) {
    try {
      const info = await show(agent, session);
      last = info;
      if (check(info)) return info;
    } catch (error) {
      last = String(error);
    }
    if (Date.now() > deadline) throw new Error(`session ${session} never ${what}: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Every event of a type at an agent (paged through the API). */
async function eventsOf(agent: AgentProcess, type: string): Promise<AgentEvent[]> {
  const found: AgentEvent[] = [];
  let after = 0;
  for (;;) {
    const page = await agent.api.events(after, 1000);
    found.push(...page.filter((event) => event.type === type));
    if (page.length < 1000) return found;
    after = page.at(-1)!.id;
  }
}

/** qemu-io writes through NBD, one after the other, at spread offsets, until stopped. */
function nbdWriter(agent: AgentProcess, volume: string, spanBytes: number) {
  let running = true;
  let count = 0;
  let failure: string | null = null;
  const done = (async () => {
    while (running) {
      const offset = ((count * 7919) % (spanBytes / (256 * 1024))) * 256 * 1024;
      const pattern = 0x20 + (count % 0x50);
      const result = await runCommand('qemu-io', ['-f', 'raw', '-c', `write -P ${pattern} ${offset} 256k`, agent.nbdUri(volume)]);
      if (result.code !== 0) {
        failure = result.out;
        return;
      }
      count++;
    }
  })();
  return {
    get count() {
      return count;
    },
    async stop() {
      running = false;
      await done;
      expect(failure, `qemu-io writes to ${volume}`).toBeNull();
    },
  };
}

async function identical(primary: AgentProcess, volume: string, secondary: AgentProcess, copy: string): Promise<void> {
  const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', primary.nbdUri(volume), secondary.nbdUri(copy)]);
  expect(compare.out, `${volume} vs ${copy}`).toMatch(/Images are identical/);
}

async function createVolumes(agent: AgentProcess, size: string, ...names: string[]): Promise<void> {
  for (const name of names) {
    const created = await agent.cli(['volume', 'create', name, size]);
    expect(created.code, created.stderr).toBe(0);
  }
}

/** Clears of copied tracks are durable with the next metadata commit, at the latest this long after (journal.ts). */
const DURABLE_WITHIN_MS = 6000;

/**
 * Waits until the copy set's initial copy is well under way at `agent`
 * (at least DURABLE_WITHIN_MS after it began, below 90 %); fails if it
 * finished first. Returns the percentage now and the percentage it had
 * reached DURABLE_WITHIN_MS earlier (copied tracks whose clears are durable).
 */
async function waitJoiningMidway(agent: AgentProcess, session: string, h1Volume: string): Promise<{ percent: number; durablePercent: number }> {
  const began = Date.now();
  const samples: Array<{ at: number; percent: number }> = [];
  for (;;) {
    const pair = (await show(agent, session)).pairs.find((p) => p.h1Volume === h1Volume);
    if (pair?.state === 'duplex') throw new Error(`${h1Volume} finished its copy before the test could stop its agent`);
    const percent = pair?.syncedPercent ?? 0;
    const now = Date.now();
    samples.push({ at: now, percent });
    if (pair?.state === 'syncing' && now - began >= DURABLE_WITHIN_MS + 1000) {
      if (percent > 90) throw new Error(`${h1Volume} copied too fast (${percent} %) for the test to stop its agent midway`);
      // Progress that is surely durable (seen DURABLE_WITHIN_MS ago): on a loaded machine the copy may start slowly.
      const durable = samples.filter((sample) => sample.at <= now - DURABLE_WITHIN_MS).at(-1)?.percent ?? 0;
      if (durable > 1) return { percent, durablePercent: durable };
    }
    if (now - began > 120_000) throw new Error(`${h1Volume} never copied: ${JSON.stringify(pair)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Proxies the test puts on links (a slow WAN), closed at the end. */
const proxies: FaultProxy[] = [];

/** Both agents dial each other through a proxy adding `latencyMs` each way (a slow WAN: copies take a while). */
async function slowLink(one: AgentProcess, other: AgentProcess, oneSite: string, otherSite: string, latencyMs: number): Promise<FaultProxy[]> {
  const made: FaultProxy[] = [];
  for (const [from, to, toSite] of [
    [one, other, otherSite],
    [other, one, oneSite],
  ] as const) {
    const [host, port] = to.runInfo.linkAddress!.split(':');
    const proxy = await FaultProxy.start({ host, port: Number(port) });
    proxy.setLatency(latencyMs);
    proxies.push(proxy);
    made.push(proxy);
    const set = await from.cli(['peers', 'set-link', toSite, proxy.address]);
    expect(set.code, set.stderr).toBe(0);
  }
  return made;
}

let alpha: AgentProcess;
let bravo: AgentProcess;
let charlie: AgentProcess;

beforeAll(async () => {
  [alpha, bravo, charlie] = await startPairedAgents([
    // Activity-log regions leave soon after they go idle, so after a crash only tracks marked in the last moments come back.
    { site: 'alpha', env: { TANDEM_ACTIVITY_IDLE_MS: '500' } },
    { site: 'bravo', env: { TANDEM_ACTIVITY_IDLE_MS: '500' } },
    { site: 'charlie', env: { TANDEM_ACTIVITY_IDLE_MS: '500' } },
  ]);
}, 180_000);

afterAll(async () => {
  // The agents' logs, for a failure's diagnosis.
  const { writeFile } = await import('node:fs/promises');
  for (const [name, agent] of [
    ['alpha', alpha],
    ['bravo', bravo],
    ['charlie', charlie],
  ] as const) {
    if (agent) await writeFile(`${process.env.TMPDIR ?? '/tmp'}/running-copy-sets-agents-${name}.log`, agent.stderr).catch(() => {});
  }
  await Promise.allSettled([alpha?.stop(), bravo?.stop(), charlie?.stop()]);
  for (const proxy of proxies) await proxy.close();
});

describe('copy sets added to and removed from a running multi-primary session (three agents)', () => {
  it('adds a copy set at bravo under NBD writes at alpha and bravo: it copies, joins, the others stay duplex and consistent; removing one leaves the rest running', async () => {
    await createVolumes(alpha, '32M', 'a');
    await createVolumes(bravo, '32M', 'b', 'b3');
    await createVolumes(charlie, '32M', 'a2', 'b2', 'b3x');
    // The new volume holds data before it is added (8 MiB, 128 tracks); its secondary holds stale data the add removes.
    expect((await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x33 0 8M', bravo.nbdUri('b3')])).code).toBe(0);
    expect((await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 20M 1M', charlie.nbdUri('b3x')])).code).toBe(0);

    await agentCliJson(alpha, ['session', 'create', 'orders', '--type', 'async', '--peer', 'charlie']);
    await agentCliJson(alpha, ['session', 'add', 'orders', 'a', 'a2']);
    await agentCliJson(alpha, ['session', 'add', 'orders', 'b', 'b2', '--primary-agent', 'bravo']);
    await agentCliJson(alpha, ['session', 'start', 'orders']);
    await waitUntil(alpha, 'orders', (info) => info.state === 'prepared', 'prepared');
    const resyncsBefore = { alpha: (await eventsOf(alpha, 'session.resync')).length, bravo: (await eventsOf(bravo, 'session.resync')).length };

    // Watch the members a and b the whole time at the control agent: duplex, never resyncing, the consistency time never withdrawn.
    const seen = { states: new Set<string>(), samples: 0, consistencyNull: 0, maxOutOfSync: 0, sessionStates: new Set<string>() };
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const info = await show(alpha, 'orders');
        for (const pair of info.pairs.filter((p) => p.h1Volume === 'a' || p.h1Volume === 'b')) {
          seen.states.add(pair.state);
          seen.maxOutOfSync = Math.max(seen.maxOutOfSync, pair.outOfSyncTracks);
        }
        seen.sessionStates.add(info.state);
        if (info.consistencyTime === null) seen.consistencyNull++;
        seen.samples++;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const writers = [nbdWriter(alpha, 'a', 16 * MiB), nbdWriter(bravo, 'b', 16 * MiB), nbdWriter(bravo, 'b3', 4 * MiB)];
    try {
      const deadline = Date.now() + 60_000;
      while (writers.some((writer) => writer.count < 3)) {
        if (Date.now() > deadline) throw new Error('the writers did not get going');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // A running session takes a copy set whose primary is at bravo.
      const added = await alpha.cli(['session', 'add', 'orders', 'b3', 'b3x', '--primary-agent', 'bravo']);
      expect(added.code, added.stderr).toBe(0);
      const afterAdd = await show(alpha, 'orders');
      expect(afterAdd.pairs.map((pair) => `${pair.primarySite ?? 'alpha'}:${pair.h1Volume}`)).toEqual(['alpha:a', 'bravo:b', 'bravo:b3']);
      expect(afterAdd.state, 'Preparing while b3 joins').toBe('preparing');
      await waitUntil(
        alpha,
        'orders',
        (info) => info.state === 'prepared' && info.pairs.length === 3 && info.pairs.every((pair) => pair.state === 'duplex'),
        'prepared again with b3 duplex',
      );
      const counts = writers.map((writer) => writer.count);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(writers.map((writer, index) => writer.count > counts[index]).every(Boolean), 'writes go on after the join').toBe(true);
    } finally {
      await Promise.all(writers.map((writer) => writer.stop()));
    }
    const written = Date.now();
    await waitUntil(alpha, 'orders', (info) => info.consistencyTime !== null && Date.parse(info.consistencyTime) > written, 'caught up');
    watching = false;
    await watcher;

    expect(seen.samples).toBeGreaterThan(20);
    expect([...seen.states], 'a and b never left duplex').toEqual(['duplex']);
    expect(seen.consistencyNull, 'the consistency time (of the members) was never withdrawn').toBe(0);
    expect([...seen.sessionStates].sort()).toEqual(['prepared', 'preparing']);
    // The others never resynced: only b3 was copied.
    expect((await eventsOf(alpha, 'session.resync')).length).toBe(resyncsBefore.alpha);
    expect((await eventsOf(bravo, 'session.resync')).length).toBe(resyncsBefore.bravo);
    const addedAtBravo = (await eventsOf(bravo, 'pair.added')).find((event) => event.message.includes('b3 -> b3x'))!;
    // Marked at the add: the allocated tracks (the 8 MiB written before and what the writer touched), not all 512.
    expect(Number(addedAtBravo.data?.markedTracks)).toBeGreaterThanOrEqual(128);
    expect(Number(addedAtBravo.data?.markedTracks)).toBeLessThan(512);
    expect((await eventsOf(bravo, 'pair.joined')).some((event) => event.message.includes('b3 -> b3x'))).toBe(true);
    expect((await eventsOf(alpha, 'pair.joined')).some((event) => event.message.includes('bravo:b3 -> b3x'))).toBe(true);
    expect((await eventsOf(charlie, 'pair.added')).some((event) => event.message.includes('b3x'))).toBe(true);
    const final = await waitUntil(alpha, 'orders', (info) => info.pairs.every((pair) => pair.outOfSyncTracks === 0), 'nothing out of sync');
    expect(final.state).toBe('prepared');
    await identical(alpha, 'a', charlie, 'a2');
    await identical(bravo, 'b', charlie, 'b2');
    await identical(bravo, 'b3', charlie, 'b3x');
    // The secondary refuses host writes to it like to the others.
    const refused = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x01 0 4k', charlie.nbdUri('b3x')]);
    expect(refused.out).toMatch(/Operation not permitted|read-only|Read-only|error/i);

    // Removing bravo's b (b3 stays at bravo) while writes go on: the rest keeps running.
    const more = [nbdWriter(alpha, 'a', 16 * MiB), nbdWriter(bravo, 'b3', 16 * MiB), nbdWriter(bravo, 'b', 16 * MiB)];
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const removed = await alpha.cli(['session', 'remove', 'orders', 'b']);
      expect(removed.code, removed.stderr).toBe(0);
      const counts = more.map((writer) => writer.count);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(more.every((writer, index) => writer.count > counts[index])).toBe(true);
    } finally {
      await Promise.all(more.map((writer) => writer.stop()));
    }
    // A write to b after the removal stays at bravo.
    expect((await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 30M 64k', bravo.nbdUri('b')])).code).toBe(0);
    const after = Date.now();
    const rest = await waitUntil(alpha, 'orders', (info) => info.consistencyTime !== null && Date.parse(info.consistencyTime) > after, 'caught up after the removal');
    expect(rest.state).toBe('prepared');
    expect(rest.pairs.map((pair) => pair.h1Volume)).toEqual(['a', 'b3']);
    await identical(alpha, 'a', charlie, 'a2');
    await identical(bravo, 'b3', charlie, 'b3x');
    const stale = await runCommand('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x5a 30M 64k', charlie.nbdUri('b2')]);
    expect(stale.out, 'the write after the removal did not reach charlie').toMatch(/Pattern verification failed/);
    expect((await show(charlie, 'orders')).pairs.map((pair) => pair.h2Volume).sort()).toEqual(['a2', 'b3x']);
    expect((await show(bravo, 'orders')).pairs.map((pair) => pair.h1Volume)).toEqual(['b3']);
    // b2 takes host writes again.
    expect((await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x02 0 4k', charlie.nbdUri('b2')])).code).toBe(0);
    for (const agent of [alpha, bravo, charlie]) {
      expect((await eventsOf(agent, 'pair.removed')).some((event) => event.message.includes('b -> b2')), 'pair.removed everywhere').toBe(true);
    }
  }, 300_000);

  it('kill -9 of bravo while its new copy set joins: after the restart it copies only what is still marked, joins and ends identical', async () => {
    await createVolumes(bravo, '512M', 'big');
    await createVolumes(charlie, '512M', 'bigx');
    // 320 MiB allocated: 5120 tracks to copy.
    const filled = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x44 0 320M', bravo.nbdUri('big')], 300_000);
    expect(filled.code, filled.out).toBe(0);
    await waitUntil(alpha, 'orders', (info) => info.state === 'prepared', 'prepared');
    // bravo's link to charlie is a slow WAN (20 ms each way; at 10 ms a quiet machine copied 90 % in 7 s): the initial copy takes long enough to kill bravo midway.
    const wan = await slowLink(bravo, charlie, 'bravo', 'charlie', 20);
    const added = await alpha.cli(['session', 'add', 'orders', 'big', 'bigx', '--primary-agent', 'bravo']);
    expect(added.code, added.stderr).toBe(0);
    const { percent, durablePercent } = await waitJoiningMidway(bravo, 'orders', 'big');
    await bravo.kill('SIGKILL');

    // The control agent suspends the session (bravo does not answer), then resumes it once bravo is back.
    await waitUntil(alpha, 'orders', (info) => info.state === 'suspended', 'suspended without bravo', 30_000);
    await bravo.restart({ samePorts: true });
    for (const proxy of wan) proxy.setLatency(0);
    const joined = await waitUntil(
      alpha,
      'orders',
      (info) => info.state === 'prepared' && info.pairs.length === 3 && info.pairs.every((pair) => pair.state === 'duplex'),
      'prepared with big joined',
      180_000,
    );
    expect(joined.pairs.map((pair) => pair.h1Volume)).toEqual(['a', 'b3', 'big']);
    const addedAtBravo = (await eventsOf(bravo, 'pair.added')).find((event) => event.message.includes('big -> bigx'))!;
    const initial = Number(addedAtBravo.data?.markedTracks);
    expect(initial).toBe(5120);
    const resumed = (await eventsOf(bravo, 'pair.joining')).filter((event) => event.message.includes('big -> bigx'));
    expect(resumed.length).toBeGreaterThanOrEqual(1);
    const remaining = Number(resumed[0].data?.markedTracks);
    // Only what was still marked: what the copy had done a few seconds before the kill (its clears are durable) is
    // not copied again; what it did in the last moments may be.
    const context = `still marked after the restart (copy at ${percent} % when bravo was killed, ${durablePercent} % ${DURABLE_WITHIN_MS} ms before)`;
    expect(durablePercent).toBeGreaterThan(1);
    console.info(`${context}: ${remaining} of ${initial} track(s)`);
    expect(remaining, context).toBeLessThan(initial);
    expect(remaining, context).toBeLessThanOrEqual(Math.ceil(initial * (1 - durablePercent / 100)) + 16);
    expect(remaining, context).toBeGreaterThan(0);
    expect((await eventsOf(bravo, 'pair.joined')).some((event) => event.message.includes('big -> bigx'))).toBe(true);
    expect((await eventsOf(alpha, 'pair.joined')).some((event) => event.message.includes('bravo:big -> bigx'))).toBe(true);
    await identical(bravo, 'big', charlie, 'bigx');
    await identical(bravo, 'b3', charlie, 'b3x');
    await identical(alpha, 'a', charlie, 'a2');
  }, 400_000);

  it('kill -9 of the source of a single-primary async session while a copy set joins: it resumes the copy after the restart and joins', async () => {
    await createVolumes(alpha, '512M', 'solo', 'solo2');
    await createVolumes(charlie, '512M', 'solox', 'solo2x');
    await agentCliJson(alpha, ['session', 'create', 'solo', '--type', 'async', '--peer', 'charlie']);
    await agentCliJson(alpha, ['session', 'add', 'solo', 'solo', 'solox']);
    await agentCliJson(alpha, ['session', 'start', 'solo']);
    await waitUntil(alpha, 'solo', (info) => info.state === 'prepared', 'prepared');
    const filled = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x66 0 320M', alpha.nbdUri('solo2')], 300_000);
    expect(filled.code, filled.out).toBe(0);
    const wan = await slowLink(alpha, charlie, 'alpha', 'charlie', 20);
    const added = await alpha.cli(['session', 'add', 'solo', 'solo2', 'solo2x']);
    expect(added.code, added.stderr).toBe(0);
    const { percent, durablePercent } = await waitJoiningMidway(alpha, 'solo', 'solo2');
    await alpha.kill('SIGKILL');
    await alpha.restart({ samePorts: true });
    for (const proxy of wan) proxy.setLatency(0);
    await waitUntil(
      alpha,
      'solo',
      (info) => info.state === 'prepared' && info.pairs.length === 2 && info.pairs.every((pair) => pair.state === 'duplex'),
      'prepared with solo2 joined',
      180_000,
    );
    const initial = Number((await eventsOf(alpha, 'pair.added')).find((event) => event.message.includes('solo2 -> solo2x'))!.data?.markedTracks);
    expect(initial).toBe(5120);
    const resumed = (await eventsOf(alpha, 'pair.joining')).filter((event) => event.message.includes('solo2 -> solo2x'));
    expect(resumed).toHaveLength(1);
    const remaining = Number(resumed[0].data?.markedTracks);
    const context = `still marked after the restart (copy at ${percent} % when alpha was killed, ${durablePercent} % ${DURABLE_WITHIN_MS} ms before)`;
    expect(durablePercent).toBeGreaterThan(1);
    console.info(`${context}: ${remaining} of ${initial} track(s)`);
    expect(remaining, context).toBeLessThan(initial);
    expect(remaining, context).toBeLessThanOrEqual(Math.ceil(initial * (1 - durablePercent / 100)) + 16);
    expect(remaining, context).toBeGreaterThan(0);
    expect((await eventsOf(alpha, 'pair.joined')).some((event) => event.message.includes('solo2 -> solo2x'))).toBe(true);
    const written = Date.now();
    await waitUntil(alpha, 'solo', (info) => info.consistencyTime !== null && Date.parse(info.consistencyTime) > written, 'caught up');
    await identical(alpha, 'solo', charlie, 'solox');
    await identical(alpha, 'solo2', charlie, 'solo2x');
  }, 400_000);
});
