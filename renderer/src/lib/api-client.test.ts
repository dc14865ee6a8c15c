import { describe, expect, it } from 'vitest';
import { SiteListSchema } from '../../../main/src/shared/console-api.ts';
import { fakeFetch } from '../test/render.tsx';
import { ApiProblem, createApiClient, describeError } from './api-client.ts';

describe('createApiClient', () => {
  it('sends the bearer token and validates answers', async () => {
    let seen: Headers | undefined;
    const api = createApiClient({ url: 'http://127.0.0.1:9', token: 'secret-token-0123456789' }, (async (_input: RequestInfo | URL, init?: RequestInit) => {
      seen = new Headers(init?.headers);
      return new Response(JSON.stringify({ sites: [] }));
    }) as typeof fetch);
    expect(await api.get('/api/sites', SiteListSchema)).toEqual({ sites: [] });
    expect(seen?.get('authorization')).toBe('Bearer secret-token-0123456789');
  });

  it('turns problem answers into ApiProblem with the code and message', async () => {
    const api = createApiClient({ url: 'http://x', token: 't'.repeat(20) }, fakeFetch({ 'GET /api/sites': [403, { problem: 'token-invalid', message: 'the pairing token is not known' }] }));
    const error = await api.get('/api/sites', SiteListSchema).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiProblem);
    expect(describeError(error)).toEqual({ problem: 'token-invalid', message: 'the pairing token is not known' });
  });

  it('refuses answers that do not match the schema', async () => {
    const api = createApiClient({ url: 'http://x', token: 't'.repeat(20) }, fakeFetch({ 'GET /api/sites': [200, { sites: 'nope' }] }));
    await expect(api.get('/api/sites', SiteListSchema)).rejects.toMatchObject({ problem: 'internal-error' });
  });

  it('reports a backend that does not answer', async () => {
    const api = createApiClient({ url: 'http://x', token: 't'.repeat(20) }, (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch);
    await expect(api.get('/api/sites', SiteListSchema)).rejects.toMatchObject({ problem: 'agent-unreachable' });
  });
});
