import { engineMs, type ApiClient } from './api.ts';

/** Routes as agents/src/api/routes/volumes.ts serves them. */
const volumePath = (name: string): string => `/v1/volumes/${encodeURIComponent(name)}`;

export interface SnapshotTiming {
  /** HTTPS round trip of the create request on a warm keep-alive connection, ms. */
  apiMs: number;
  /** What the agent says the engine took, ms, when it says (Server-Timing or a body field). */
  engineMs: number | null;
}

/** Creates and deletes snapshots through the agent's admin API. */
export class SnapshotApi {
  constructor(private readonly api: ApiClient) {}

  async create(source: string, name: string): Promise<SnapshotTiming> {
    const response = await this.api.request('POST', `${volumePath(source)}/snapshots`, { name });
    if (response.status !== 201) throw new Error(`snapshot ${source} -> ${name}: ${response.status} ${JSON.stringify(response.body)}`);
    return { apiMs: response.ms, engineMs: engineMs(response) };
  }

  async delete(name: string): Promise<void> {
    const response = await this.api.request('DELETE', volumePath(name));
    if (response.status >= 300) throw new Error(`delete ${name}: ${response.status} ${JSON.stringify(response.body)}`);
  }

  /** Round trip of a cheap authenticated GET /v1/agent: the API's own share of a create's time, ms. */
  async baseline(): Promise<number> {
    const response = await this.api.request('GET', '/v1/agent');
    if (response.status !== 200) throw new Error(`GET /v1/agent: ${response.status} ${JSON.stringify(response.body)}`);
    return response.ms;
  }
}
