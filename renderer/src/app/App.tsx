import { MantineProvider } from '@mantine/core';
import { QueryClientProvider, type QueryClient } from '@tanstack/react-query';
import { useMemo } from 'react';
import type { BackendEndpoint } from '../../../main/src/shared/console-api.ts';
import { createApiClient, type ApiClient } from '../lib/api-client.ts';
import { ApiProvider } from './api-context.tsx';
import { ConsoleShell } from './ConsoleShell.tsx';
import { MissingToken } from './MissingToken.tsx';
import { createQueryClient } from './query-client.ts';
import { theme } from './theme.ts';

/** Providers around the console: theme, the API client, the one QueryClient. */
export function App(props: { endpoint: BackendEndpoint | null; queryClient?: QueryClient; api?: ApiClient }) {
  const queryClient = useMemo(() => props.queryClient ?? createQueryClient(), [props.queryClient]);
  const api = useMemo(() => props.api ?? (props.endpoint ? createApiClient(props.endpoint) : null), [props.api, props.endpoint]);
  return (
    <MantineProvider theme={theme} defaultColorScheme="auto">
      {api ? (
        <QueryClientProvider client={queryClient}>
          <ApiProvider client={api}>
            <ConsoleShell endpoint={props.endpoint} />
          </ApiProvider>
        </QueryClientProvider>
      ) : (
        <MissingToken />
      )}
    </MantineProvider>
  );
}
