import { describe, expect, it } from 'vitest';
import { CreateVolumeRequestSchema } from '@tandem/contract';
import { parseInput, Router } from './router.ts';

describe('Router', () => {
  const ok = async () => ({});
  const router = new Router().add('GET', '/api/sites', ok).add('DELETE', '/api/sites/:siteId', ok).add('GET', '/api/sites/:siteId/volumes/:name', ok);

  it('matches paths and decodes parameters', () => {
    const match = router.match('GET', '/api/sites/s1/volumes/a%20b');
    expect(match).toMatchObject({ params: { siteId: 's1', name: 'a b' } });
  });

  it('tells a wrong method from an unknown path', () => {
    expect(router.match('POST', '/api/sites/s1')).toBe('wrong-method');
    expect(router.match('GET', '/api/nothing')).toBeUndefined();
    expect(router.match('GET', '/api/sites/%E0%A4%A')).toBeUndefined();
  });
});

describe('parseInput', () => {
  it('turns schema failures into problems naming the field', () => {
    expect(() => parseInput(CreateVolumeRequestSchema, { name: '-bad', sizeBytes: 4096 })).toThrow(expect.objectContaining({ problem: 'invalid-name' }));
    expect(() => parseInput(CreateVolumeRequestSchema, { name: 'good', sizeBytes: 1000 })).toThrow(
      expect.objectContaining({ problem: 'invalid-size', message: expect.stringContaining('4 KiB') }),
    );
    expect(() => parseInput(CreateVolumeRequestSchema, undefined)).toThrow(expect.objectContaining({ problem: 'bad-request' }));
    expect(parseInput(CreateVolumeRequestSchema, { name: 'good', sizeBytes: 4096 })).toEqual({ name: 'good', sizeBytes: 4096 });
  });
});
