import type { z } from 'zod';
import {
  AgentInfoSchema,
  AuditListSchema,
  ClientInfoSchema,
  ClientListSchema,
  EventListSchema,
  PoolStatsSchema,
  ProblemError,
  TrackDetailSchema,
  TrackMapSchema,
  VolumeInfoSchema,
  VolumeListSchema,
  type AgentInfo,
  type AuditList,
  type ClientInfo,
  type ClientList,
  type SetClientRoleRequest,
  type CreateSnapshotRequest,
  type CreateVolumeRequest,
  type EventList,
  type PoolStats,
  type ResizeVolumeRequest,
  type TrackDetail,
  type TrackMap,
  type TrackMapQuery,
  type VolumeInfo,
  type VolumeList,
} from '@tandem/contract';
import { agentRequest, problemFromResponse, type AgentRequest, type AgentTlsOptions } from './agent-http.ts';
import { agentRoutes } from './agent-routes.ts';
import type { SiteCredentials } from './site-registry.ts';

/**
 * A paired agent's control API over mutual TLS: the client certificate from
 * pairing, the agent's CA, and its pinned certificate fingerprint. Every
 * answer is validated with the contract's schemas before anyone sees it.
 */
export class AgentClient {
  readonly address: string;
  private readonly tls: AgentTlsOptions;

  constructor(credentials: Pick<SiteCredentials, 'address' | 'caCertificate' | 'clientCertificate' | 'clientKeyPem' | 'certificateFingerprint'>) {
    this.address = credentials.address;
    this.tls = {
      pinnedFingerprint: credentials.certificateFingerprint,
      caCertificate: credentials.caCertificate,
      clientCertificate: credentials.clientCertificate,
      clientKeyPem: credentials.clientKeyPem,
    };
  }

  /** TLS options for other connections to the same agent (the event stream). */
  get tlsOptions(): AgentTlsOptions {
    return this.tls;
  }

  info(): Promise<AgentInfo> {
    return this.call('GET', agentRoutes.info, AgentInfoSchema);
  }

  pool(): Promise<PoolStats> {
    return this.call('GET', agentRoutes.pool, PoolStatsSchema);
  }

  listVolumes(): Promise<VolumeList> {
    return this.call('GET', agentRoutes.volumes, VolumeListSchema);
  }

  getVolume(name: string): Promise<VolumeInfo> {
    return this.call('GET', agentRoutes.volume(name), VolumeInfoSchema);
  }

  createVolume(request: CreateVolumeRequest): Promise<VolumeInfo> {
    return this.call('POST', agentRoutes.volumes, VolumeInfoSchema, request);
  }

  resizeVolume(name: string, request: ResizeVolumeRequest): Promise<VolumeInfo> {
    return this.call('PATCH', agentRoutes.volume(name), VolumeInfoSchema, request);
  }

  async deleteVolume(name: string): Promise<void> {
    await this.send('DELETE', agentRoutes.volume(name));
  }

  createSnapshot(source: string, request: CreateSnapshotRequest): Promise<VolumeInfo> {
    return this.call('POST', agentRoutes.snapshots(source), VolumeInfoSchema, request);
  }

  trackMap(name: string, query: Partial<TrackMapQuery>): Promise<TrackMap> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, String(value));
    const suffix = search.size > 0 ? `?${search}` : '';
    return this.call('GET', `${agentRoutes.trackMap(name)}${suffix}`, TrackMapSchema);
  }

  track(name: string, track: number): Promise<TrackDetail> {
    return this.call('GET', agentRoutes.track(name, track), TrackDetailSchema);
  }

  /** `GET /v1/audit`: the agent's audit trail (JSON), newest `limit` entries since `since`, of one session or all. */
  audit(query: { since?: string; limit?: number; session?: string } = {}): Promise<AuditList> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, String(value));
    const suffix = search.size > 0 ? `?${search}` : '';
    return this.call('GET', `${agentRoutes.audit}${suffix}`, AuditListSchema);
  }

  /** `GET /v1/clients` (administrator): every client certificate the agent issued, with its role. */
  clients(): Promise<ClientList> {
    return this.call('GET', agentRoutes.clients, ClientListSchema);
  }

  /** `PATCH /v1/clients/:serial` (administrator): the role a client acts as, at most its certificate's. */
  setClientRole(serial: string, request: SetClientRoleRequest): Promise<ClientInfo> {
    return this.call('PATCH', agentRoutes.client(serial), ClientInfoSchema, request);
  }

  /** `DELETE /v1/clients/:serial` (administrator): revokes a client certificate. */
  revokeClient(serial: string): Promise<ClientInfo> {
    return this.call('DELETE', agentRoutes.client(serial), ClientInfoSchema);
  }

  events(after: number, limit = 200): Promise<EventList> {
    return this.call('GET', `${agentRoutes.events}?after=${after}&limit=${limit}`, EventListSchema);
  }

  /** Any agent route, its answer validated with `schema` (used by the feature route modules, e.g. replication-client.ts). */
  request<T extends z.ZodType>(method: AgentRequest['method'], path: string, schema: T, body?: unknown): Promise<z.infer<T>> {
    return this.call(method, path, schema, body);
  }

  /** An agent route whose answer carries nothing (204). */
  async perform(method: AgentRequest['method'], path: string, body?: unknown): Promise<void> {
    await this.send(method, path, body);
  }

  private async call<T extends z.ZodType>(method: AgentRequest['method'], path: string, schema: T, body?: unknown): Promise<z.infer<T>> {
    const answer = await this.send(method, path, body);
    const parsed = schema.safeParse(answer);
    if (!parsed.success) {
      throw new ProblemError('internal-error', `the agent at ${this.address} sent an answer to ${method} ${path} that does not match the contract`, {
        issues: parsed.error.issues.slice(0, 5).map((issue) => `${issue.path.join('.')}: ${issue.message}`),
      });
    }
    return parsed.data;
  }

  private async send(method: AgentRequest['method'], path: string, body?: unknown): Promise<unknown> {
    const response = await agentRequest({ address: this.address, method, path, body, tls: this.tls });
    if (response.status < 200 || response.status >= 300) throw problemFromResponse(this.address, response);
    return response.body;
  }
}
