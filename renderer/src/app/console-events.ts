import type { QueryClient } from '@tanstack/react-query';
import type { AgentEvent } from '@tandem/contract';
import { bearerProtocolPrefix, consoleProtocol, ConsoleEventSchema, type BackendEndpoint, type ConsoleEvent, type SiteList } from '../../../main/src/shared/console-api.ts';
import { siteKeys } from '../features/sites/api/site-keys.ts';
import { keysForEvent, keysForSite } from './event-invalidation.ts';
import { invalidateSoon } from './refetch-batcher.ts';

/**
 * Applies one backend event to the query cache: site states are patched in
 * place, agent events make what they touch stale and refetch it once per
 * burst (refetch-batcher.ts).
 */
export function applyConsoleEvent(queryClient: QueryClient, event: ConsoleEvent): void {
  if (event.kind === 'sites') {
    queryClient.setQueryData<SiteList>(siteKeys.list(), { sites: event.sites });
    return;
  }
  if (event.kind === 'site') {
    const previous = queryClient.getQueryData<SiteList>(siteKeys.list());
    const wasConnected = previous?.sites.find((site) => site.id === event.site.id)?.connection.state === 'connected';
    queryClient.setQueryData<SiteList>(siteKeys.list(), (current) => {
      const sites = current?.sites ?? [];
      const known = sites.some((site) => site.id === event.site.id);
      return { sites: known ? sites.map((site) => (site.id === event.site.id ? event.site : site)) : [...sites, event.site] };
    });
    // Back after a gap: whatever happened meanwhile is unknown, so refresh the site's data.
    if (event.site.connection.state === 'connected' && !wasConnected) invalidateSite(queryClient, event.site.id);
    return;
  }
  invalidateForAgentEvent(queryClient, event.siteId, event.event);
}

function invalidateForAgentEvent(queryClient: QueryClient, siteId: string, event: AgentEvent): void {
  for (const queryKey of keysForEvent(event.type, siteId)) invalidateSoon(queryClient, queryKey);
}

function invalidateSite(queryClient: QueryClient, siteId: string): void {
  for (const queryKey of keysForSite(siteId)) void queryClient.invalidateQueries({ queryKey });
}

export type BackendLink = 'connecting' | 'open' | 'lost';

/**
 * Keeps the WebSocket to the backend open (reconnecting with backoff) and
 * feeds every event into the query cache. Returns a stop function.
 */
export function connectConsoleEvents(endpoint: BackendEndpoint, queryClient: QueryClient, onLink: (link: BackendLink) => void): () => void {
  let socket: WebSocket | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let attempt = 0;
  let stopped = false;
  const url = `${endpoint.url.replace(/^http/, 'ws')}/api/events`;

  const open = () => {
    if (stopped) return;
    onLink(attempt === 0 ? 'connecting' : 'lost');
    socket = new WebSocket(url, [consoleProtocol, `${bearerProtocolPrefix}${endpoint.token}`]);
    socket.onopen = () => {
      attempt = 0;
      onLink('open');
      // Anything may have changed while we were away.
      void queryClient.invalidateQueries();
    };
    socket.onmessage = (message) => {
      let json: unknown;
      try {
        json = JSON.parse(String(message.data));
      } catch {
        return;
      }
      const parsed = ConsoleEventSchema.safeParse(json);
      if (parsed.success) applyConsoleEvent(queryClient, parsed.data);
    };
    socket.onclose = () => {
      if (stopped) return;
      onLink('lost');
      const delay = Math.min(10_000, 500 * 2 ** attempt++);
      timer = setTimeout(open, delay);
    };
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    socket?.close();
  };
}
