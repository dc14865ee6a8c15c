import { MantineProvider } from '@mantine/core';
import { QueryClientProvider } from '@tanstack/react-query';
import { render } from '@testing-library/react';
import type { ReactNode } from 'react';
import { ApiProvider } from '../app/api-context.tsx';
import { createQueryClient } from '../app/query-client.ts';
import { theme } from '../app/theme.ts';
import { createApiClient } from '../lib/api-client.ts';

/** A fake backend: route table of `METHOD /path` -> [status, body]. */
export type FakeRoutes = Record<string, [number, unknown]>;

export function fakeFetch(routes: FakeRoutes, calls: string[] = []): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const key = `${init?.method ?? 'GET'} ${url.pathname}`;
    const called = `${key}${url.search}`;
    calls.push(init?.body ? `${called} ${String(init.body)}` : called);
    const route = routes[key];
    if (!route) return new Response(JSON.stringify({ problem: 'not-found', message: `no fake for ${key}` }), { status: 404 });
    return new Response(route[1] === undefined ? null : JSON.stringify(route[1]), { status: route[0] });
  }) as typeof fetch;
}

/** Renders with the real providers, a test QueryClient (no retries) and a fake backend. */
export function renderWithBackend(ui: ReactNode, routes: FakeRoutes, calls: string[] = []) {
  const queryClient = createQueryClient({ test: true });
  const api = createApiClient({ url: 'http://127.0.0.1:1', token: 't'.repeat(32) }, fakeFetch(routes, calls));
  const result = render(
    <MantineProvider theme={theme}>
      <QueryClientProvider client={queryClient}>
        <ApiProvider client={api}>{ui}</ApiProvider>
      </QueryClientProvider>
    </MantineProvider>,
  );
  return { ...result, queryClient, calls };
}
