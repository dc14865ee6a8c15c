import https from 'node:https';
import os from 'node:os';
import type WebSocket from 'ws';
import type { z } from 'zod';
import {
  AgentInfoSchema,
  EventListSchema,
  HealthSchema,
  PoolStatsSchema,
  ProblemError,
  ProblemSchema,
  auditUserHeader,
  TrackDetailSchema,
  TrackMapSchema,
  VolumeInfoSchema,
  VolumeListSchema,
  type AgentEvent,
  type CreateSnapshotRequest,
  type TrackMapQuery,
  type VolumeInfo,
} from '@tandem/contract';
import { readRunInfo } from './data-dir-files.ts';
import { loadAdminCredentials, type ClientCredentials } from '../tls/paths.ts';

/** Filters of `GET /v1/events` as the query carries them. */
export interface EventFilter {
  subject?: string;
  type?: string;
  excludeType?: string;
  newest?: boolean;
}

/** Who runs the CLI, for the agent's audit trail (informational: the admin certificate is the authority). */
function localUser(): string | null {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? null;
  }
}

/** A raw answer: status and parsed JSON body (undefined when empty). */
export interface ApiResponse {
  status: number;
  body: unknown;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where to connect for an address the agent listens on (a wildcard listener is reached on loopback). */
export function connectHost(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]*)\]?:(\d+)$/.exec(address);
  if (!match) throw new ProblemError('bad-request', `not a HOST:PORT address: ${address}`);
  const host = match[1] === '0.0.0.0' ? '127.0.0.1' : match[1] === '::' ? '::1' : match[1];
  return { host, port: Number(match[2]) };
}

/**
 * A client of one agent's control API over mutual TLS: it trusts only the
 * agent's CA and presents a client certificate. Answers are checked against
 * the contract's schemas; error answers become ProblemErrors.
 */
export class AgentApiClient {
  readonly host: string;
  readonly port: number;
  private readonly agent: https.Agent;
  /** Sent as `x-tandem-user` with every request (the audit trail's user name). */
  user: string | null = localUser();

  constructor(
    address: string,
    private readonly credentials: Partial<ClientCredentials> & { caPem: string },
    private readonly timeoutMs = 30_000,
  ) {
    ({ host: this.host, port: this.port } = connectHost(address));
    this.agent = new https.Agent({
      keepAlive: true,
      ca: credentials.caPem,
      cert: credentials.certificatePem,
      key: credentials.keyPem,
    });
  }

  /** The local admin's client for the agent running on a data dir (from run.json and DATA/tls). */
  static async forDataDir(dataDir: string): Promise<AgentApiClient> {
    const runInfo = await readRunInfo(dataDir);
    if (!runInfo) {
      throw new ProblemError(
        'agent-unreachable',
        `no agent is running on ${dataDir} (no run.json); start one with \`tandem-agent run --data ${dataDir}\``,
      );
    }
    if (!processAlive(runInfo.pid)) {
      throw new ProblemError(
        'agent-unreachable',
        `the agent that wrote ${dataDir}/run.json (pid ${runInfo.pid}) is not running; start it again with \`tandem-agent run --data ${dataDir}\``,
      );
    }
    return new AgentApiClient(runInfo.apiAddress, await loadAdminCredentials(dataDir));
  }

  get baseUrl(): string {
    return `https://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** Sends one request; never throws for an HTTP status, only for a transport failure (`agent-unreachable`). */
  request(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const request = https.request(
        {
          host: this.host,
          port: this.port,
          method,
          path,
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: {
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
            ...(this.user ? { [auditUserHeader]: this.user } : {}),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = undefined;
            if (text) {
              try {
                parsed = JSON.parse(text);
              } catch {
                parsed = text;
              }
            }
            resolve({ status: response.statusCode ?? 0, body: parsed });
          });
        },
      );
      request.on('timeout', () => request.destroy(new ProblemError('timeout', `the agent at ${this.baseUrl} did not answer in time`)));
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (error instanceof ProblemError) return reject(error);
        const reason = error.code ?? error.message;
        reject(new ProblemError('agent-unreachable', `cannot reach the agent at ${this.baseUrl}: ${reason}`));
      });
      request.end(payload);
    });
  }

  /** Sends a request and returns the body checked against `schema`; a problem answer is thrown. */
  async call<S extends z.ZodType>(method: string, path: string, schema: S | null, body?: unknown): Promise<z.output<S>> {
    const response = await this.request(method, path, body);
    if (response.status >= 400) {
      const problem = ProblemSchema.safeParse(response.body);
      if (problem.success) throw new ProblemError(problem.data.problem, problem.data.message, problem.data.detail);
      throw new ProblemError('internal-error', `the agent answered ${response.status} without a problem body`);
    }
    if (!schema) return undefined as z.output<S>;
    const parsed = schema.safeParse(response.body);
    if (!parsed.success) {
      throw new ProblemError('internal-error', `the agent's answer to ${method} ${path} does not match the contract`);
    }
    return parsed.data;
  }

  health() {
    return this.call('GET', '/v1/health', HealthSchema);
  }
  agentInfo() {
    return this.call('GET', '/v1/agent', AgentInfoSchema);
  }
  pool() {
    return this.call('GET', '/v1/pool', PoolStatsSchema);
  }
  async listVolumes(): Promise<VolumeInfo[]> {
    return (await this.call('GET', '/v1/volumes', VolumeListSchema)).volumes;
  }
  getVolume(name: string) {
    return this.call('GET', `/v1/volumes/${encodeURIComponent(name)}`, VolumeInfoSchema);
  }
  createVolume(name: string, sizeBytes: number) {
    return this.call('POST', '/v1/volumes', VolumeInfoSchema, { name, sizeBytes });
  }
  resizeVolume(name: string, sizeBytes: number) {
    return this.call('PATCH', `/v1/volumes/${encodeURIComponent(name)}`, VolumeInfoSchema, { sizeBytes });
  }
  async deleteVolume(name: string): Promise<void> {
    await this.call('DELETE', `/v1/volumes/${encodeURIComponent(name)}`, null);
  }
  createSnapshot(source: string, request: CreateSnapshotRequest) {
    return this.call('POST', `/v1/volumes/${encodeURIComponent(source)}/snapshots`, VolumeInfoSchema, request);
  }
  async listSnapshots(source: string): Promise<VolumeInfo[]> {
    return (await this.call('GET', `/v1/volumes/${encodeURIComponent(source)}/snapshots`, VolumeListSchema)).volumes;
  }
  trackMap(name: string, query: Partial<TrackMapQuery> = {}) {
    const search = new URLSearchParams(Object.entries(query).map(([key, value]): [string, string] => [key, String(value)]));
    return this.call('GET', `/v1/volumes/${encodeURIComponent(name)}/track-map?${search}`, TrackMapSchema);
  }
  trackDetail(name: string, track: number) {
    return this.call('GET', `/v1/volumes/${encodeURIComponent(name)}/tracks/${track}`, TrackDetailSchema);
  }
  /** `GET /v1/events`; `filter` narrows the answer at the agent (EventListQuery: `type` and `excludeType` comma-separated). */
  async events(after = 0, limit = 200, filter: EventFilter = {}): Promise<AgentEvent[]> {
    const query = new URLSearchParams({ after: String(after), limit: String(limit) });
    if (filter.subject !== undefined) query.set('subject', filter.subject);
    if (filter.type !== undefined) query.set('type', filter.type);
    if (filter.excludeType !== undefined) query.set('excludeType', filter.excludeType);
    if (filter.newest) query.set('newest', 'true');
    return (await this.call('GET', `/v1/events?${query}`, EventListSchema)).events;
  }

  /**
   * Opens the event WebSocket; frames are EventStreamMessage JSON. `after` replays older events first.
   * ws is loaded here, not with the module, so the other commands start without it.
   */
  async openEventStream(after?: number): Promise<WebSocket> {
    const query = after === undefined ? '' : `?after=${after}`;
    const { default: WebSocket } = await import('ws');
    return new WebSocket(`wss://${this.baseUrl.slice('https://'.length)}/v1/events/stream${query}`, {
      ca: this.credentials.caPem,
      cert: this.credentials.certificatePem,
      key: this.credentials.keyPem,
      handshakeTimeout: this.timeoutMs,
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
