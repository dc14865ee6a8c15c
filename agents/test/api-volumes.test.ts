/**
 * Volume, snapshot, pool, track-map and event routes of a real spawned agent,
 * called as the local admin: happy paths and bad input. A refused request
 * must leave nothing behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemSchema, TiB, VolumeInfoSchema, type Problem } from '@tandem/contract';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';

let agent: AgentProcess;
const MiB = 1024 * 1024;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'volumes-site' });
});

afterAll(async () => {
  await agent?.stop();
});

async function refused(method: string, path: string, body?: unknown): Promise<{ status: number; problem: Problem }> {
  const response = await agent.api.request(method, path, body);
  return { status: response.status, problem: ProblemSchema.parse(response.body) };
}

describe('creating volumes with bad bodies', () => {
  it.each([
    ['missing name', { sizeBytes: MiB }, 400, 'bad-request', 'body.name: is required'],
    ['missing size', { name: 'v' }, 400, 'bad-request', 'body.sizeBytes: is required'],
    ['size as a string', { name: 'v', sizeBytes: '1G' }, 400, 'bad-request', 'body.sizeBytes'],
    ['size not a multiple of 4 KiB', { name: 'v', sizeBytes: 4097 }, 400, 'invalid-size', 'multiple of 4 KiB'],
    ['negative size', { name: 'v', sizeBytes: -4096 }, 400, 'invalid-size', 'above zero'],
    ['zero size', { name: 'v', sizeBytes: 0 }, 400, 'invalid-size', 'above zero'],
    ['fractional size', { name: 'v', sizeBytes: 4096.5 }, 400, 'invalid-size', 'whole number'],
    ['size over 64 TiB', { name: 'v', sizeBytes: 64 * TiB + 4096 }, 400, 'invalid-size', 'at most 64 TiB'],
    ['name with a slash', { name: 'a/b', sizeBytes: MiB }, 400, 'invalid-name', 'body.name'],
    ['empty name', { name: '', sizeBytes: MiB }, 400, 'invalid-name', 'body.name'],
    ['not an object', [1, 2], 400, 'bad-request', 'body'],
  ])('%s → %s %s', async (_label, body, status, problem, message) => {
    const answer = await refused('POST', '/v1/volumes', body);
    expect(answer.status).toBe(status);
    expect(answer.problem.problem).toBe(problem);
    expect(answer.problem.message).toContain(message);
  });

  it('left no volume and no volume event behind', async () => {
    expect(await agent.api.listVolumes()).toEqual([]);
    const events = await agent.api.events();
    expect(events.filter((event) => event.type.startsWith('volume.'))).toEqual([]);
  });
});

describe('volume lifecycle', () => {
  it('creates (201), lists, shows, grows and deletes a volume', async () => {
    const created = await agent.api.request('POST', '/v1/volumes', { name: 'data1', sizeBytes: 64 * MiB });
    expect(created.status).toBe(201);
    expect(VolumeInfoSchema.parse(created.body)).toMatchObject({ name: 'data1', sizeBytes: 64 * MiB, kind: 'volume' });
    expect((await agent.api.listVolumes()).map((volume) => volume.name)).toEqual(['data1']);
    expect(await agent.api.getVolume('data1')).toMatchObject({ trackCount: 1024, allocatedBytes: 0 });

    const grown = await agent.api.resizeVolume('data1', 128 * MiB);
    expect(grown.sizeBytes).toBe(128 * MiB);
    const shrink = await refused('PATCH', '/v1/volumes/data1', { sizeBytes: 64 * MiB });
    expect(shrink).toMatchObject({ status: 400, problem: { problem: 'invalid-size' } });
    expect((await agent.api.getVolume('data1')).sizeBytes).toBe(128 * MiB);

    const duplicate = await refused('POST', '/v1/volumes', { name: 'data1', sizeBytes: MiB });
    expect(duplicate).toMatchObject({ status: 409, problem: { problem: 'already-exists' } });

    const deleted = await agent.api.request('DELETE', '/v1/volumes/data1');
    expect(deleted.status).toBe(204);
    expect(await refused('GET', '/v1/volumes/data1')).toMatchObject({ status: 404, problem: { problem: 'not-found' } });
    const types = (await agent.api.events()).map((event) => event.type);
    expect(types).toEqual(expect.arrayContaining(['volume.created', 'volume.resized', 'volume.deleted']));
  });

  it('answers not-found for every route on a missing volume', async () => {
    for (const [method, path, body] of [
      ['GET', '/v1/volumes/ghost', undefined],
      ['PATCH', '/v1/volumes/ghost', { sizeBytes: MiB }],
      ['DELETE', '/v1/volumes/ghost', undefined],
      ['POST', '/v1/volumes/ghost/snapshots', { name: 'ghost-snap' }],
      ['GET', '/v1/volumes/ghost/snapshots', undefined],
      ['GET', '/v1/volumes/ghost/track-map', undefined],
      ['GET', '/v1/volumes/ghost/tracks/0', undefined],
    ] as const) {
      const answer = await refused(method, path, body);
      expect(answer, `${method} ${path}`).toMatchObject({ status: 404, problem: { problem: 'not-found' } });
    }
  });

  it('validates path and query parameters', async () => {
    await agent.api.createVolume('mapped', 16 * MiB);
    expect(await refused('GET', '/v1/volumes/mapped/tracks/-1')).toMatchObject({ status: 400, problem: { problem: 'bad-request' } });
    expect(await refused('GET', '/v1/volumes/mapped/tracks/abc')).toMatchObject({ status: 400, problem: { problem: 'bad-request' } });
    const buckets = await refused('GET', '/v1/volumes/mapped/track-map?buckets=0');
    expect(buckets).toMatchObject({ status: 400, problem: { problem: 'bad-request', message: expect.stringContaining('querystring.buckets') } });
    const limit = await refused('GET', '/v1/events?limit=5000');
    expect(limit).toMatchObject({ status: 400, problem: { problem: 'bad-request', message: expect.stringContaining('querystring.limit') } });
    const unknownRoute = await refused('GET', '/v1/nothing-here');
    expect(unknownRoute).toMatchObject({ status: 404, problem: { problem: 'not-found' } });
  });
});

describe('snapshots, track map, pool', () => {
  it('snapshots a volume (201) and lists its snapshots', async () => {
    await agent.api.createVolume('base', 8 * MiB);
    const response = await agent.api.request('POST', '/v1/volumes/base/snapshots', { name: 'base-snap1', readOnly: true });
    expect(response.status).toBe(201);
    expect(VolumeInfoSchema.parse(response.body)).toMatchObject({ name: 'base-snap1', kind: 'snapshot', source: 'base', readOnly: true });
    expect((await agent.api.listSnapshots('base')).map((snapshot) => snapshot.name)).toEqual(['base-snap1']);
    expect((await agent.api.getVolume('base')).snapshots).toEqual(['base-snap1']);
    const clash = await refused('POST', '/v1/volumes/base/snapshots', { name: 'base' });
    expect(clash).toMatchObject({ status: 409, problem: { problem: 'already-exists' } });
    const badName = await refused('POST', '/v1/volumes/base/snapshots', { name: '../etc' });
    expect(badName).toMatchObject({ status: 400, problem: { problem: 'invalid-name' } });
  });

  it('serves the track map as run-length buckets and one track in detail', async () => {
    const map = await agent.api.trackMap('base', { buckets: 4 });
    expect(map).toMatchObject({ volume: 'base', trackCount: 128, start: 0, count: 128 });
    expect(map.runs.reduce((sum, [repeat]) => sum + repeat, 0)).toBe(map.buckets);
    expect(map.runs.every(([, allocated]) => allocated === 0)).toBe(true);
    const detail = await agent.api.trackDetail('base', 3);
    expect(detail).toMatchObject({ volume: 'base', track: 3, state: 'unallocated', extent: null });
  });

  it('reports pool statistics', async () => {
    const pool = await agent.api.pool();
    expect(pool.volumes).toBeGreaterThanOrEqual(2);
    expect(pool.snapshots).toBe(1);
    expect(pool.trackSize).toBe(64 * 1024);
  });
});
