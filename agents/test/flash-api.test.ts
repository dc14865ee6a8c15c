/**
 * Flash copy refusals and the CLI against a real agent process: malformed
 * bodies, size mismatch, unknown volumes, a target already in a
 * relationship, a write-inhibited target written over NBD. Every refusal
 * has its stable problem code and changes nothing.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventListSchema, FlashSessionInfoSchema, FlashSessionListSchema, ProblemSchema, type FlashSessionInfo } from '@tandem/contract';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { compareExport, fillRandom, flashSession, pollSession, qemuIo } from './helpers/flash.ts';
import { NbdBlockClient, NbdCommandError } from './helpers/nbd-block-client.ts';
import { ERR } from './helpers/nbd-raw-client.ts';
import { run } from './helpers/nbd-harness.ts';
import { agentCliJson } from './helpers/run-command.ts';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;

let agent: AgentProcess;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'flash-api' });
  for (const [name, size] of [
    ['one', SIZE],
    ['one-pit', SIZE],
    ['two', SIZE],
    ['two-pit', SIZE],
    ['small', SIZE / 2],
    ['inhibit-src', SIZE],
    ['inhibit-tgt', SIZE],
  ] as const) {
    await agentCliJson(agent, ['volume', 'create', name, String(size)]);
  }
  await qemuIo(agent.nbdUri('one'), 'write -P 0x31 0 1M', 'flush');
  await qemuIo(agent.nbdUri('one-pit'), 'write -P 0x41 0 2M', 'flush');
});

afterAll(async () => {
  await agent?.stop();
});

async function refused(method: string, url: string, body: unknown, status: number, problem: string, message?: RegExp): Promise<void> {
  const response = await agent.api.request(method, url, body);
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  const parsed = ProblemSchema.parse(response.body);
  expect(parsed.problem).toBe(problem);
  if (message) expect(parsed.message).toMatch(message);
}

async function sessionNames(): Promise<string[]> {
  const response = await agent.api.request('GET', '/v1/flash-sessions');
  expect(response.status).toBe(200);
  return FlashSessionListSchema.parse(response.body).sessions.map((session) => session.name);
}

/** The target `one-pit` still holds its own old content (0x41 over 2 MiB): nothing was flashed onto it. */
async function targetUntouched(): Promise<void> {
  expect(await compareExport(agent, 'one-pit', Buffer.concat([Buffer.alloc(2 * MiB, 0x41), Buffer.alloc(SIZE - 2 * MiB)]), 'untouched')).toBeNull();
}

describe('flash copy refusals through the API', () => {
  it('refuses malformed bodies with bad-request naming the field', async () => {
    await refused('POST', '/v1/flash-sessions', {}, 400, 'bad-request', /body\.pairs/);
    await refused('POST', '/v1/flash-sessions', { pairs: [] }, 400, 'bad-request', /body\.pairs/);
    await refused('POST', '/v1/flash-sessions', { pairs: [{ source: 'one' }] }, 400, 'bad-request', /body\.pairs\.0\.target/);
    await refused('POST', '/v1/flash-sessions', { pairs: [{ source: 'one', target: 'one-pit' }], rateMiBps: -5 }, 400, 'bad-request', /rateMiBps/);
    await refused('POST', '/v1/flash-sessions', { pairs: [{ source: 'one', target: 'one-pit' }], backgroundCopy: 'yes' }, 400, 'bad-request', /backgroundCopy/);
    await refused('POST', '/v1/flash-sessions', { pairs: [{ source: 'one', target: 'one-pit' }], holdTimeoutMs: 1 }, 400, 'bad-request', /holdTimeoutMs/);
    await refused('POST', '/v1/flash-sessions', { name: 'no spaces', pairs: [{ source: 'one', target: 'one-pit' }] }, 400, 'invalid-name', /body\.name/);
    await refused('PATCH', '/v1/flash-sessions/any', { rateMiBps: 'fast' }, 400, 'bad-request', /rateMiBps/);
    await refused('POST', '/v1/flash-sessions/any/withdraw', { finishCopy: 1 }, 400, 'bad-request', /finishCopy/);
    await refused('GET', '/v1/flash-sessions/any/pairs/p1/track-map?buckets=0', undefined, 400, 'bad-request', /buckets/);
    const malformed = await agent.api.request('POST', '/v1/flash-sessions', undefined);
    expect(malformed.status).toBe(400);
    expect(await sessionNames()).toEqual([]);
  });

  it('refuses a size mismatch, an unknown volume and a pair with itself; nothing is established', async () => {
    await refused('POST', '/v1/flash-sessions', { pairs: [{ source: 'one', target: 'small' }] }, 400, 'invalid-size', /size/);
    await refused('POST', '/v1/flash-sessions', { pairs: [{ source: 'one', target: 'nowhere' }] }, 404, 'not-found', /nowhere/);
    await refused('POST', '/v1/flash-sessions', { pairs: [{ source: 'ghost', target: 'one-pit' }] }, 404, 'not-found', /ghost/);
    // A group with one bad pair establishes none of its pairs.
    await refused(
      'POST',
      '/v1/flash-sessions',
      { name: 'half', pairs: [{ source: 'one', target: 'one-pit' }, { source: 'two', target: 'nowhere' }] },
      404,
      'not-found',
      /nowhere/,
    );
    await refused('POST', '/v1/flash-sessions', { pairs: [{ source: 'one', target: 'one' }] }, 409, 'conflict', /onto itself/);
    await refused(
      'POST',
      '/v1/flash-sessions',
      { pairs: [{ source: 'one', target: 'one-pit' }, { source: 'two', target: 'one-pit' }] },
      409,
      'conflict',
      /one-pit/,
    );
    await agentCliJson(agent, ['snapshot', 'create', 'two', 'two-frozen', '--read-only']);
    await refused('POST', '/v1/flash-sessions', { pairs: [{ source: 'one', target: 'two-frozen' }] }, 409, 'read-only', /two-frozen/);
    await refused('POST', '/v1/flash-sessions', { pairs: [{ source: 'one', target: 'one-pit' }], coordinated: true }, 400, 'bad-request', /remoteTarget/);
    expect(await sessionNames()).toEqual([]);
    await targetUntouched();
    await refused('GET', '/v1/flash-sessions/half', undefined, 404, 'not-found');
  });

  it('refuses a target that is already in a relationship, and a second session of the same name', async () => {
    const first = FlashSessionInfoSchema.parse(
      (await agent.api.request('POST', '/v1/flash-sessions', { name: 'first', pairs: [{ source: 'one', target: 'one-pit' }], backgroundCopy: false })).body,
    );
    expect(first.state).toBe('copying');
    await refused('POST', '/v1/flash-sessions', { name: 'again', pairs: [{ source: 'two', target: 'one-pit' }] }, 409, 'volume-busy', /one-pit/);
    // A target cannot be the source of another relationship in the same instant either.
    await refused('POST', '/v1/flash-sessions', { name: 'chained', pairs: [{ source: 'one-pit', target: 'two-pit' }] }, 409, 'volume-busy', /one-pit/);
    // Nor can a volume in a relationship be deleted or resized.
    await refused('DELETE', '/v1/volumes/one-pit', undefined, 409, 'volume-busy', /first/);
    await refused('PATCH', '/v1/volumes/one', { sizeBytes: 2 * SIZE }, 409, 'volume-busy', /first/);
    await refused('POST', '/v1/flash-sessions', { name: 'first', pairs: [{ source: 'two', target: 'two-pit' }] }, 409, 'already-exists', /first/);
    expect(await sessionNames()).toEqual(['first']);
    // Withdrawn, the session is kept (stopped: the no-copy target was never complete) until removed.
    const withdrawn = await agent.api.request('POST', '/v1/flash-sessions/first/withdraw');
    expect(withdrawn.status, JSON.stringify(withdrawn.body)).toBe(200);
    expect(withdrawn.body).toMatchObject({ name: 'first', state: 'stopped' });
    expect(await sessionNames()).toEqual(['first']);
    const removed = await agent.api.request('DELETE', '/v1/flash-sessions/first');
    expect(removed.status, JSON.stringify(removed.body)).toBe(204);
    expect(await sessionNames()).toEqual([]);
    // The target is free again: a new relationship onto it is accepted; DELETE of an active session withdraws it first.
    const second = await agent.api.request('POST', '/v1/flash-sessions', { name: 'second', pairs: [{ source: 'two', target: 'one-pit' }], backgroundCopy: false });
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    expect((await agent.api.request('DELETE', '/v1/flash-sessions/second')).status).toBe(204);
    await refused('POST', '/v1/flash-sessions/second/withdraw', {}, 404, 'not-found');
    expect(await sessionNames()).toEqual([]);
  });

  it('a write-inhibited target refuses host writes over NBD with EPERM until withdrawn', async () => {
    await qemuIo(agent.nbdUri('inhibit-src'), 'write -P 0x61 0 1M', 'flush');
    const session = FlashSessionInfoSchema.parse(
      (
        await agent.api.request('POST', '/v1/flash-sessions', {
          name: 'inhibit',
          pairs: [{ source: 'inhibit-src', target: 'inhibit-tgt' }],
          writeInhibitTarget: true,
        })
      ).body,
    );
    expect(session.options.writeInhibitTarget).toBe(true);
    const host = await NbdBlockClient.connect(agent.nbdHost, agent.nbdPort, 'inhibit-tgt');
    const error = await host.write(0, Buffer.alloc(4096, 0xee)).then(
      () => null,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(NbdCommandError);
    expect((error as NbdCommandError).errno).toBe(ERR.EPERM);
    await host.close();
    const qemu = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0xee 0 4k', agent.nbdUri('inhibit-tgt')]);
    expect(`${qemu.stdout}${qemu.stderr}`).toMatch(/Operation not permitted|read-only|permission/i);
    // Reads still show the point in time.
    await qemuIo(agent.nbdUri('inhibit-tgt'), 'read -P 0x61 0 1M');
    await pollSession(agent, 'inhibit', (s) => s.state === 'idle-copied', { timeoutMs: 60_000 });
    const withdrawn = await agent.api.request('POST', '/v1/flash-sessions/inhibit/withdraw', {});
    expect(withdrawn.status, JSON.stringify(withdrawn.body)).toBe(200);
    await qemuIo(agent.nbdUri('inhibit-tgt'), 'write -P 0xee 0 4k', 'read -P 0xee 0 4k');
    expect((await agent.api.request('DELETE', '/v1/flash-sessions/inhibit')).status).toBe(204);
  });

  it('answers not-found for unknown sessions on every route', async () => {
    await refused('GET', '/v1/flash-sessions/nope', undefined, 404, 'not-found');
    await refused('PATCH', '/v1/flash-sessions/nope', { paused: true }, 404, 'not-found');
    await refused('POST', '/v1/flash-sessions/nope/refresh', {}, 404, 'not-found');
    await refused('POST', '/v1/flash-sessions/nope/reverse', {}, 404, 'not-found');
    await refused('POST', '/v1/flash-sessions/nope/withdraw', {}, 404, 'not-found');
    await refused('GET', '/v1/flash-sessions/nope/pairs/x/track-map', undefined, 404, 'not-found');
  });
});

describe('tandem-agent flash', () => {
  it('establishes a group, shows it in words and as JSON, lists, updates and withdraws it', async () => {
    // Every track allocated, so the background copy has 2 x 16 MiB to move at 1 MiB/s: still copying when shown.
    await fillRandom(agent, 'one', randomBytes(SIZE), 'cli-one');
    await fillRandom(agent, 'two', randomBytes(SIZE), 'cli-two');
    const created = await agent.cli([
      'flash', 'establish', '--name', 'cli', '--pair', 'one:one-pit', '--pair', 'two:two-pit', '--rate', '1', '--incremental',
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('established flash session cli: one -> one-pit, two -> two-pit');
    expect(created.stdout).toMatch(/state\s+COPYING: the targets show the point in time/);
    expect(created.stdout).toContain('consistent group of 2 pairs');
    expect(created.stdout).toMatch(/background copy at 1 MiB\/s; incremental/);

    const shown = FlashSessionInfoSchema.parse(await agentCliJson<FlashSessionInfo>(agent, ['flash', 'show', 'cli']));
    expect(shown).toMatchObject({ name: 'cli', options: { rateMiBps: 1, incremental: true } });
    expect(shown.pairs.map((pair) => `${pair.source}>${pair.target}`)).toEqual(['one>one-pit', 'two>two-pit']);
    const fromApi = await flashSession(agent, 'cli');
    expect({ pointInTime: shown.pointInTime, createdAt: shown.createdAt }).toEqual({ pointInTime: fromApi.pointInTime, createdAt: fromApi.createdAt });

    const events = EventListSchema.parse((await agent.api.request('GET', '/v1/events?limit=1000')).body).events;
    const established = events.find((event) => event.type === 'flash.established' && event.subject === 'cli');
    expect(established?.message).toMatch(/cli established: 2 pair\(s\)/);

    const human = await agent.cli(['flash', 'show', 'cli']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/progress\s+\d+\.\d % copied/);
    expect(human.stdout).toMatch(/^SOURCE\s+TARGET\s+STATE\s+COPIED/m);
    expect(human.stdout).toMatch(/^one\s+one-pit\s+copying/m);

    const list = await agent.cli(['flash', 'list']);
    expect(list.stdout).toMatch(/^NAME\s+STATE\s+PAIRS\s+COPIED/);
    expect(list.stdout).toMatch(/^cli\s+copying\s+2\s/m);

    const paused = FlashSessionInfoSchema.parse(await agentCliJson(agent, ['flash', 'update', 'cli', '--pause']));
    expect(paused.state).toBe('suspended');
    const faster = FlashSessionInfoSchema.parse(await agentCliJson(agent, ['flash', 'update', 'cli', '--resume', '--rate', 'unlimited']));
    expect(faster).toMatchObject({ state: 'copying', options: { rateMiBps: null } });
    const watched = await agent.cli(['flash', 'show', 'cli', '--watch', '--interval', '0.2']);
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stdout).toMatch(/100\.0 % copied/);

    const withdrawn = await agent.cli(['flash', 'withdraw', 'cli']);
    expect(withdrawn.code, withdrawn.stderr).toBe(0);
    expect(withdrawn.stdout).toMatch(/^withdrew flash session cli/);
    expect((await agent.cli(['flash', 'remove', 'cli'])).stdout).toBe('removed flash session cli\n');
    expect((await agent.cli(['flash', 'list'])).stdout).toBe('no flash sessions\n');
  });

  it('refuses with the problem code and exit 1, usage errors with exit 2', async () => {
    const mismatch = await agent.cli(['flash', 'establish', '--pair', 'one:small']);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toMatch(/^error: invalid-size: /);
    const unknown = await agent.cli(['flash', 'show', 'nope', '--json']);
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stderr)).toMatchObject({ problem: 'not-found' });
    const usage = await agent.cli(['flash', 'establish', '--pair', 'nocolon']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^error: bad-request: .*SOURCE:TARGET/);
    // The flags reach the agent: a coordinated pair without a remote target is the agent's refusal.
    const coordinated = await agent.cli(['flash', 'establish', '--coordinated', '--pair', 'one:one-pit']);
    expect(coordinated.code).toBe(1);
    expect(coordinated.stderr).toMatch(/^error: bad-request: a coordinated session needs remoteTarget/);
    const nothing = await agent.cli(['flash', 'update', 'any']);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('nothing to change');
    const listed = JSON.parse((await agent.cli(['flash', 'list', '--json'])).stdout) as unknown;
    expect(FlashSessionListSchema.parse(listed).sessions.map((session) => session.name)).toEqual(await sessionNames());
  });
});
