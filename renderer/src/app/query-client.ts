import { QueryClient } from '@tanstack/react-query';
import { ApiProblem } from '../lib/api-client.ts';

const noRetry = new Set(['unauthenticated', 'access-denied', 'not-found', 'token-invalid', 'bad-request', 'certificate-mismatch']);

/**
 * The one QueryClient. Data changes arrive as events (see console-events.ts),
 * so nothing refetches on a timer or on focus; failures that another try
 * cannot fix are not retried, and nothing is retried under test.
 */
export function createQueryClient(options: { test?: boolean } = {}): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: Infinity,
        refetchOnWindowFocus: false,
        retry: (failureCount, error) => {
          if (options.test) return false;
          if (error instanceof ApiProblem && noRetry.has(error.problem)) return false;
          return failureCount < 2;
        },
      },
      mutations: { retry: false },
    },
  });
}
