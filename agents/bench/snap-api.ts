import { engineMs, type ApiClient, type ApiResponse } from './api.ts';

/** Candidate routes, the one agents/src/api serves first; the first that answers is kept. */
const createRoutes: Array<(source: string, name: string) => { path: string; body: unknown }> = [
  (source, name) => ({ path: `/v1/volumes/${source}/snapshots`, body: { name } }),
  (source, name) => ({ path: `/api/v1/volumes/${source}/snapshots`, body: { name } }),
  (source, name) => ({ path: `/volumes/${source}/snapshots`, body: { name } }),
  (source, name) => ({ path: `/v1/snapshots`, body: { source, name } }),
  (source, name) => ({ path: `/snapshots`, body: { source, name } }),
];

export interface SnapshotTiming {
  /** HTTPS round trip of the create request on a warm keep-alive connection, ms. */
  apiMs: number;
  /** What the agent says the engine took, ms, when it says. */
  engineMs: number | null;
}

/** Creates and deletes snapshots through the agent's admin API. */
export class SnapshotApi {
  private route = -1;
  private prefix = '';

  constructor(private readonly api: ApiClient) {}

  async create(source: string, name: string): Promise<SnapshotTiming> {
    const tried: string[] = [];
    const start = this.route >= 0 ? this.route : 0;
    for (let i = start; i < createRoutes.length; i++) {
      const { path, body } = createRoutes[i](encodeURIComponent(source), name);
      const response = await this.api.request('POST', path, body);
      if (response.status === 404 && this.route < 0 && isRouteMissing(response)) {
        tried.push(path);
        continue;
      }
      if (response.status >= 300) throw new Error(`POST ${path} -> ${response.status} ${JSON.stringify(response.body)}`);
      this.route = i;
      this.prefix = path.startsWith('/api/v1') ? '/api/v1' : path.startsWith('/v1') ? '/v1' : '';
      return { apiMs: response.ms, engineMs: engineMs(response) };
    }
    throw new Error(`no snapshot route answered (tried ${tried.join(', ')})`);
  }

  async delete(name: string): Promise<void> {
    const response = await this.api.request('DELETE', `${this.prefix}/volumes/${encodeURIComponent(name)}`);
    if (response.status >= 300) throw new Error(`DELETE ${name} -> ${response.status} ${JSON.stringify(response.body)}`);
  }

  /** A cheap authenticated request, to open the TLS connection before timing. */
  async warm(): Promise<ApiResponse> {
    return this.api.request('GET', `${this.prefix}/volumes`);
  }
}

/** A 404 for an unknown route (fastify's default), not "volume not found". */
function isRouteMissing(response: ApiResponse): boolean {
  const body = response.body as { message?: string; problem?: string } | null;
  return !body || typeof body !== 'object' || !body.problem || /route/i.test(body.message ?? '');
}
