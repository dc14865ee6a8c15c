/**
 * The admin commands against a real spawned agent, as scripts use them
 * (`--json`) and as people read them (aligned tables), plus the lifecycle
 * edges: a second agent on one data dir, `check` while running, kill -9.
 */
import { spawn } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventListSchema, PoolStatsSchema, VolumeInfoSchema, VolumeListSchema } from '@tandem/contract';
import { agentBin, startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';

let agent: AgentProcess;
const MiB = 1024 * 1024;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'cli-site' });
});

afterAll(async () => {
  await agent?.stop();
});

async function json(args: string[]): Promise<unknown> {
  const result = await agent.cli([...args, '--json']);
  expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout);
}

describe('volumes and snapshots', () => {
  it('creates, shows, grows and lists volumes with --json', async () => {
    const created = VolumeInfoSchema.parse(await json(['volume', 'create', 'cli-vol', '1G']));
    expect(created).toMatchObject({ name: 'cli-vol', sizeBytes: 1024 * MiB });
    expect(VolumeInfoSchema.parse(await json(['volume', 'show', 'cli-vol'])).trackCount).toBe(16384);
    const resized = VolumeInfoSchema.parse(await json(['volume', 'resize', 'cli-vol', '1536M']));
    expect(resized.sizeBytes).toBe(1536 * MiB);
    const listed = VolumeListSchema.parse(await json(['volume', 'list']));
    expect(listed.volumes.map((volume) => volume.name)).toEqual(['cli-vol']);
  });

  it('prints human output as aligned tables', async () => {
    expect((await agent.cli(['volume', 'create', 'second-volume', '64M'])).stdout).toBe('created volume second-volume (64 MiB)\n');
    const result = await agent.cli(['volume', 'list']);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^NAME\s+KIND\s+SIZE\s+ALLOCATED/);
    // Every column starts where its header does; sizes end where theirs does.
    const kindAt = lines[0].indexOf('KIND');
    const sizeEnd = lines[0].indexOf('SIZE') + 'SIZE'.length;
    expect(lines[1].slice(kindAt).startsWith('volume')).toBe(true);
    expect(lines[2].slice(kindAt).startsWith('volume')).toBe(true);
    expect(lines[1].slice(0, sizeEnd).endsWith('1.5 GiB')).toBe(true);
    expect(lines[2].slice(0, sizeEnd).endsWith('64 MiB')).toBe(true);
  });

  it('refuses a shrink and a misaligned size with exit 1 and the problem code, changing nothing', async () => {
    const shrink = await agent.cli(['volume', 'resize', 'cli-vol', '1G']);
    expect(shrink.code).toBe(1);
    expect(shrink.stderr).toMatch(/^error: invalid-size: /);
    const misaligned = await agent.cli(['volume', 'create', 'odd', '4097']);
    expect(misaligned.code).toBe(1);
    expect(misaligned.stderr).toContain('error: invalid-size: body.sizeBytes: the size must be a multiple of 4 KiB');
    const missing = await agent.cli(['volume', 'show', 'nope', '--json']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stderr)).toMatchObject({ problem: 'not-found' });
    const names = VolumeListSchema.parse(await json(['volume', 'list'])).volumes.map((volume) => volume.name);
    expect(names).toEqual(['cli-vol', 'second-volume']);
    expect(VolumeInfoSchema.parse(await json(['volume', 'show', 'cli-vol'])).sizeBytes).toBe(1536 * MiB);
  });

  it('snapshots a volume and lists snapshots, of one volume and of all', async () => {
    const snapshot = VolumeInfoSchema.parse(await json(['snapshot', 'create', 'cli-vol', 'cli-snap']));
    expect(snapshot).toMatchObject({ kind: 'snapshot', source: 'cli-vol', readOnly: false });
    await json(['snapshot', 'create', 'second-volume', 'other-snap', '--read-only']);
    const ofOne = VolumeListSchema.parse(await json(['snapshot', 'list', 'cli-vol']));
    expect(ofOne.volumes.map((volume) => volume.name)).toEqual(['cli-snap']);
    const all = VolumeListSchema.parse(await json(['snapshot', 'list']));
    expect(all.volumes.map((volume) => volume.name).sort()).toEqual(['cli-snap', 'other-snap']);
    const human = await agent.cli(['snapshot', 'list']);
    expect(human.stdout).toMatch(/other-snap\s+snapshot\s+64 MiB.*second-volume\s+0\s+ro/);
  });

  it('shows the pool and the event log', async () => {
    const pool = PoolStatsSchema.parse(await json(['pool', 'show']));
    expect(pool).toMatchObject({ volumes: 2, snapshots: 2, trackSize: 64 * 1024 });
    const events = EventListSchema.parse(await json(['events']));
    const types = events.events.map((event) => event.type);
    expect(types[0]).toBe('agent.started');
    expect(types).toEqual(expect.arrayContaining(['volume.created', 'volume.resized', 'snapshot.created']));
    const human = await agent.cli(['pool', 'show']);
    expect(human.stdout).toMatch(/^track size\s+64 KiB$/m);
  });

  it('deletes a snapshot and a volume', async () => {
    expect((await agent.cli(['volume', 'delete', 'other-snap'])).code).toBe(0);
    expect((await agent.cli(['volume', 'delete', 'second-volume'])).stdout).toBe('deleted second-volume\n');
    const names = VolumeListSchema.parse(await json(['volume', 'list'])).volumes.map((volume) => volume.name);
    expect(names.sort()).toEqual(['cli-snap', 'cli-vol']);
  });
});

describe('events --follow', () => {
  it('prints new events as they happen and stops on SIGINT', async () => {
    const child = spawn(process.execPath, [agentBin, 'events', '--follow', '--json', '--data', agent.dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const sawOld = new Promise<void>((resolve) =>
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk;
        if (stdout.includes('"agent.started"')) resolve();
      }),
    );
    await sawOld;
    await agent.api.createVolume('followed', MiB);
    await expect
      .poll(() => stdout.split('\n').some((line) => line.includes('"volume.created"') && line.includes('"followed"')), {
        timeout: 15_000,
      })
      .toBe(true);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(0);
  });
});

describe('one agent per data dir', () => {
  it('refuses a second agent and an offline check while the agent runs', async () => {
    const second = await agent.cli(['run', '--api', '127.0.0.1:0', '--nbd', '127.0.0.1:0']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('error: conflict:');
    const check = await agent.cli(['check']);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(`an agent (pid ${agent.pid}) is using`);
    // The refused commands did not disturb the running agent.
    expect((await agent.api.health()).status).toBe('ok');
  });
});

describe('kill -9 and restart', () => {
  it('admin commands say the agent is gone; after a restart everything is there and check is clean after stop', async () => {
    const independent = await startAgentProcess({ site: 'crash-site', nbdSocket: true });
    try {
      expect((await independent.api.agentInfo()).nbdSocket).toBe(independent.nbdSocket);
      expect((await stat(independent.nbdSocket!)).isSocket()).toBe(true);
      await independent.api.createVolume('survivor', 4 * MiB);
      const killed = await independent.kill('SIGKILL');
      expect(killed.signal).toBe('SIGKILL');
      const gone = await independent.cli(['volume', 'list']);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toContain('error: agent-unreachable:');
      expect(gone.stderr).toContain('is not running');

      await independent.restart();
      expect((await independent.api.listVolumes()).map((volume) => volume.name)).toEqual(['survivor']);
      const types = (await independent.api.events()).map((event) => event.type);
      expect(types.filter((type) => type === 'agent.started')).toHaveLength(2);
      expect(types).not.toContain('agent.stopped');

      await independent.stop({ keepDataDir: true });
      const check = await independent.cli(['check']);
      expect(check.code, check.stdout + check.stderr).toBe(0);
      expect(check.stdout).toMatch(/^clean: 1 volume\(s\)/);
    } finally {
      await independent.stop();
      await rm(path.dirname(independent.dataDir), { recursive: true, force: true });
    }
  });
});
