import { agentEventTypes, legacyCertificateRole, ProblemError, type AgentEvent, type AgentInfo, type Problem, type Role } from '@tandem/contract';
import type { ConnectSiteRequest, ConsoleEvent, ProbeSiteResponse, SiteConnection, SiteSummary } from '../shared/console-api.ts';
import { AgentClient } from './agent-client.ts';
import type { BackoffPolicy } from './backoff.ts';
import { AgentEventStream, type StreamState } from './event-stream.ts';
import { pairWithAgent, probeAgent } from './pairing.ts';
import type { SiteCredentials, SiteRegistry } from './site-registry.ts';

interface LiveSite {
  credentials: SiteCredentials;
  client: AgentClient;
  stream: AgentEventStream;
  connection: SiteConnection;
  agent: AgentInfo | null;
}

export type ConsoleEventListener = (event: ConsoleEvent) => void;

/**
 * Every paired site, live: its agent client, its event stream and its
 * connection state. Fans every agent's events in to the console's listeners.
 */
export class SiteManager {
  private readonly live = new Map<string, LiveSite>();
  private readonly locked = new Map<string, SiteSummary>();
  private readonly listeners = new Set<ConsoleEventListener>();

  constructor(
    private readonly registry: SiteRegistry,
    private readonly options: { backoff?: BackoffPolicy; clientName?: string } = {},
  ) {}

  /**
   * Starts the event streams of every site in the registry. A site whose key
   * cannot be opened here (sealed by another machine's keychain) stays listed
   * as offline with the reason, so it can be removed and paired again.
   */
  start(): void {
    for (const stored of this.registry.describe()) {
      try {
        this.attach(this.registry.get(stored.id)!);
      } catch (error) {
        const { id, site, address, certificateFingerprint, addedAt, role } = stored;
        this.locked.set(id, {
          id,
          site,
          address,
          certificateFingerprint,
          addedAt,
          agent: null,
          role: role ?? null,
          connection: { state: 'offline', since: new Date().toISOString(), lastProblem: problemOf(error), nextAttemptAt: null },
        });
      }
    }
  }

  stop(): void {
    for (const site of this.live.values()) site.stream.stop();
    this.live.clear();
  }

  subscribe(listener: ConsoleEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(): SiteSummary[] {
    return [...[...this.live.values()].map((site) => this.summary(site)), ...this.locked.values()];
  }

  get(siteId: string): SiteSummary {
    return this.locked.get(siteId) ?? this.summary(this.liveSite(siteId));
  }

  client(siteId: string): AgentClient {
    return this.liveSite(siteId).client;
  }

  async probe(address: string): Promise<ProbeSiteResponse> {
    const probe = await probeAgent(address);
    return {
      address,
      site: probe.health.site,
      agentId: probe.health.agentId,
      version: probe.health.version,
      certificateFingerprint: probe.certificateFingerprint,
      alreadyConnected: this.live.has(probe.health.agentId) || this.locked.has(probe.health.agentId),
    };
  }

  async connect(request: ConnectSiteRequest): Promise<SiteSummary> {
    const credentials = await pairWithAgent({
      address: request.address,
      token: request.token,
      expectedFingerprint: request.expectedFingerprint,
      clientName: this.options.clientName,
      role: request.role,
    });
    await this.registry.add(credentials);
    const site = this.attach(credentials);
    this.broadcastSites();
    return this.summary(site);
  }

  async remove(siteId: string): Promise<void> {
    if (this.locked.delete(siteId)) {
      await this.registry.remove(siteId);
      this.broadcastSites();
      return;
    }
    const site = this.liveSite(siteId);
    site.stream.stop();
    this.live.delete(siteId);
    await this.registry.remove(siteId);
    this.broadcastSites();
  }

  private attach(credentials: SiteCredentials): LiveSite {
    const client = new AgentClient(credentials);
    const site: LiveSite = {
      credentials,
      client,
      agent: null,
      connection: { state: 'connecting', since: new Date().toISOString(), lastProblem: null, nextAttemptAt: null },
      stream: new AgentEventStream({
        address: credentials.address,
        tls: client.tlsOptions,
        backoff: this.options.backoff,
        onEvent: (event) => this.onAgentEvent(site, event),
        onState: (state) => void this.onStreamState(site, state),
      }),
    };
    this.live.set(credentials.id, site);
    site.stream.start();
    return site;
  }

  private onAgentEvent(site: LiveSite, event: AgentEvent): void {
    this.emit({ kind: 'agent-event', siteId: site.credentials.id, event });
    // An administrator changed some client's role: ask again who this console is, so what it offers follows at once.
    if (event.type === agentEventTypes.clientRole) void this.refreshAgent(site);
  }

  private async refreshAgent(site: LiveSite): Promise<void> {
    try {
      site.agent = await site.client.info();
    } catch {
      // The stream reports a lost agent; nothing else to do here.
      return;
    }
    if (this.live.get(site.credentials.id) === site) this.emit({ kind: 'site', site: this.summary(site) });
  }

  private async onStreamState(site: LiveSite, state: StreamState): Promise<void> {
    if (state.state === 'connected') {
      // Refresh what the agent says about itself before showing it as connected.
      try {
        site.agent = await site.client.info();
      } catch (error) {
        this.setConnection(site, 'reconnecting', problemOf(error), null);
        return;
      }
      this.setConnection(site, 'connected', null, null);
    } else if (state.state === 'connecting') {
      this.setConnection(site, site.connection.state === 'connected' ? 'reconnecting' : site.connection.state, site.connection.lastProblem, null);
    } else {
      this.setConnection(site, 'reconnecting', state.problem, state.nextAttemptAt.toISOString());
    }
  }

  private setConnection(site: LiveSite, state: SiteConnection['state'], lastProblem: Problem | null, nextAttemptAt: string | null): void {
    if (!this.live.has(site.credentials.id)) return;
    const since = state === site.connection.state ? site.connection.since : new Date().toISOString();
    site.connection = { state, since, lastProblem, nextAttemptAt };
    this.emit({ kind: 'site', site: this.summary(site) });
  }

  private liveSite(siteId: string): LiveSite {
    const site = this.live.get(siteId);
    const locked = this.locked.get(siteId)?.connection.lastProblem;
    if (locked) throw new ProblemError(locked.problem, locked.message);
    if (!site) throw new ProblemError('not-found', `no connected site has the id ${siteId}`);
    return site;
  }

  private summary(site: LiveSite): SiteSummary {
    const { credentials } = site;
    return {
      id: credentials.id,
      site: credentials.site,
      address: credentials.address,
      certificateFingerprint: credentials.certificateFingerprint,
      addedAt: credentials.addedAt,
      connection: site.connection,
      agent: site.agent,
      role: siteRole(site.agent, credentials.role),
    };
  }

  private broadcastSites(): void {
    this.emit({ kind: 'sites', sites: this.list() });
  }

  private emit(event: ConsoleEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

/**
 * The console's role at a site: what the agent says (an agent older than
 * roles says nothing: it gave every client every right), else what it issued
 * at pairing, else unknown.
 */
function siteRole(agent: AgentInfo | null, issued: Role | undefined): Role | null {
  if (agent) return agent.caller?.role ?? legacyCertificateRole;
  return issued ?? null;
}

function problemOf(error: unknown): Problem {
  return error instanceof ProblemError ? error.toJSON() : { problem: 'internal-error', message: 'the agent could not be described' };
}
