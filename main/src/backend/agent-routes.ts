/**
 * Paths of the agent's control API (see contract/PROTOCOL.md). Kept in one
 * place so the client, the fake agent used in tests and the docs agree.
 */
const volume = (name: string) => `/v1/volumes/${encodeURIComponent(name)}`;

export const agentRoutes = {
  health: '/v1/health',
  info: '/v1/agent',
  pair: '/v1/pair',
  pool: '/v1/pool',
  volumes: '/v1/volumes',
  volume,
  snapshots: (name: string) => `${volume(name)}/snapshots`,
  trackMap: (name: string) => `${volume(name)}/track-map`,
  track: (name: string, track: number) => `${volume(name)}/tracks/${track}`,
  events: '/v1/events',
  eventStream: '/v1/events/stream',
  audit: '/v1/audit',
  clients: '/v1/clients',
  client: (serial: string) => `/v1/clients/${encodeURIComponent(serial)}`,
} as const;
