import path from 'node:path';
import type { Logger } from 'pino';
import {
  ClusterHistorySchema,
  ProblemError,
  type ClusterHistory,
  type ClusterInfo,
  type CreateClusterRequest,
  type UpdateClusterRequest,
} from '@tandem/contract';
import type { Catalog } from '../../storage/catalog.ts';
import type { PeerAnswer, PeerCall } from '../link/peer-protocol.ts';
import type { PeerRegistry } from '../peers.ts';
import type { SessionReader } from '../session-reader.ts';
import type { MemberDefinition } from './consolidate.ts';
import { MasterDataSet, type MdsOptions } from './mds-store.ts';
import { registerClusterPeerServer, reportSessions, type SessionReport } from './peer-requests.ts';
import { ClusterProcessor, memberLabel, reportToView, type ClusterDefinition } from './processor.ts';

export const DEFAULT_INTERVAL_MS = 2000;

export interface ClusterManagerOptions {
  service: SessionReader;
  peers: PeerRegistry;
  catalog: Catalog;
  /** The agent's data dir: master data sets live in `mds/` under it. */
  dataDir: string;
  logger: Logger;
  /** Compaction thresholds of the master data sets. */
  mds?: MdsOptions;
}

/** Cluster definitions in the catalog (`clusters`, `cluster_members`). */
class ClusterDefinitions {
  constructor(private readonly catalog: Catalog) {}

  load(ownAgentId: string): ClusterDefinition[] {
    const db = this.catalog.db;
    const clusters = db.prepare('SELECT * FROM clusters ORDER BY created_at, name').all() as Array<Record<string, unknown>>;
    const members = db.prepare('SELECT * FROM cluster_members ORDER BY added_at, session_name').all() as Array<Record<string, unknown>>;
    return clusters.map((row) => ({
      name: String(row.name),
      intervalMs: Number(row.interval_ms),
      timeoutMs: row.timeout_ms === null ? null : Number(row.timeout_ms),
      createdAt: String(row.created_at),
      members: members
        .filter((member) => member.cluster === row.name)
        .map((member) => ({
          sessionId: String(member.session_id),
          session: String(member.session_name),
          agentId: String(member.agent_id),
          site: String(member.site),
          local: member.agent_id === ownAgentId,
        })),
    }));
  }

  saveCluster(definition: ClusterDefinition): void {
    this.catalog.db
      .prepare(
        `INSERT INTO clusters (name, interval_ms, timeout_ms, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET interval_ms = excluded.interval_ms, timeout_ms = excluded.timeout_ms`,
      )
      .run(definition.name, definition.intervalMs, definition.timeoutMs, definition.createdAt);
  }

  deleteCluster(name: string): void {
    this.catalog.db.prepare('DELETE FROM clusters WHERE name = ?').run(name);
  }

  addMember(cluster: string, member: MemberDefinition): void {
    this.catalog.db
      .prepare('INSERT INTO cluster_members (cluster, session_id, session_name, agent_id, site, added_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(cluster, member.sessionId, member.session, member.agentId, member.site, new Date().toISOString());
  }

  removeMember(cluster: string, sessionId: string): void {
    this.catalog.db.prepare('DELETE FROM cluster_members WHERE cluster = ? AND session_id = ?').run(cluster, sessionId);
  }
}

/**
 * Clusters defined at this agent: their definitions, their processors and
 * their master data sets; and the cluster side of the peer link (a paired
 * site reading a master data set kept here).
 */
export class ClusterManager {
  private readonly processors = new Map<string, ClusterProcessor>();
  private readonly definitions: ClusterDefinitions;
  private readonly mdsDir: string;

  private constructor(private readonly options: ClusterManagerOptions) {
    this.definitions = new ClusterDefinitions(options.catalog);
    this.mdsDir = path.join(options.dataDir, 'mds');
  }

  /** Loads the clusters of the catalog, opens their master data sets and starts their processors. */
  static async open(options: ClusterManagerOptions): Promise<ClusterManager> {
    const manager = new ClusterManager(options);
    for (const definition of manager.definitions.load(options.service.agentId)) await manager.startProcessor(definition);
    registerClusterPeerServer(options.service, manager);
    return manager;
  }

  private get site(): string {
    return this.options.service.site;
  }

  private mdsFile(name: string): string {
    return path.join(this.mdsDir, `${name}.log`);
  }

  private async startProcessor(definition: ClusterDefinition): Promise<ClusterProcessor> {
    const { store, recovery } = await MasterDataSet.open(this.mdsFile(definition.name), this.options.mds);
    const { catalog, logger } = this.options;
    if (recovery.tornBytes > 0) {
      catalog.recordEvent(
        'cluster.mds',
        'info',
        definition.name,
        `master data set of ${definition.name}: cut off ${recovery.tornBytes} byte(s) of an append a crash interrupted`,
      );
    }
    if (recovery.damage) {
      catalog.recordEvent(
        'cluster.mds',
        'error',
        definition.name,
        `master data set of ${definition.name} is damaged (${recovery.damage}); kept as ${recovery.movedTo}, continuing with the ${store.recordCount} record(s) that verify`,
      );
    }
    const last = store.recordCount > 0 ? (await store.read(1)).records[0] : undefined;
    const processor = new ClusterProcessor(
      definition,
      store,
      { service: this.options.service, peers: this.options.peers, catalog, agentId: this.options.service.agentId, logger },
      last?.health ?? null,
    );
    this.processors.set(definition.name, processor);
    processor.start();
    return processor;
  }

  private processor(name: string): ClusterProcessor {
    const processor = this.processors.get(name);
    if (!processor) throw new ProblemError('not-found', `there is no cluster named ${name} at ${this.site}`);
    return processor;
  }

  // --- commands ---

  async create(request: CreateClusterRequest): Promise<ClusterInfo> {
    if (this.processors.has(request.name)) throw new ProblemError('already-exists', `a cluster named ${request.name} already exists`);
    const definition: ClusterDefinition = {
      name: request.name,
      intervalMs: Math.round((request.intervalSeconds ?? DEFAULT_INTERVAL_MS / 1000) * 1000),
      timeoutMs: request.timeoutSeconds === undefined ? null : Math.round(request.timeoutSeconds * 1000),
      createdAt: new Date().toISOString(),
      members: [],
    };
    this.definitions.saveCluster(definition);
    await this.startProcessor(definition);
    this.options.catalog.recordEvent(
      'cluster.created',
      'info',
      definition.name,
      `created cluster ${definition.name} (every ${definition.intervalMs / 1000} s)`,
    );
    return this.info(definition.name);
  }

  update(name: string, request: UpdateClusterRequest): ClusterInfo {
    const processor = this.processor(name);
    const definition = processor.definition;
    if (request.intervalSeconds !== undefined) definition.intervalMs = Math.round(request.intervalSeconds * 1000);
    if (request.timeoutSeconds !== undefined) {
      definition.timeoutMs = request.timeoutSeconds === null ? null : Math.round(request.timeoutSeconds * 1000);
    }
    this.definitions.saveCluster(definition);
    processor.reschedule();
    return this.info(name);
  }

  async delete(name: string): Promise<void> {
    const processor = this.processor(name);
    this.processors.delete(name);
    await processor.close();
    this.definitions.deleteCluster(name);
    await processor.mds.destroy();
    this.options.catalog.recordEvent('cluster.deleted', 'info', name, `deleted cluster ${name} and its master data set`);
  }

  /** Adds a session of this agent, or of a paired site (asked over the peer link), to a cluster. */
  async addMember(name: string, sessionName: string, site?: string): Promise<ClusterInfo> {
    const processor = this.processor(name);
    const { service, peers } = this.options;
    const local = site === undefined || site === this.site || site === service.agentId;
    let report: SessionReport;
    let agentId: string;
    let siteName: string;
    if (local) {
      [report] = reportSessions(service, [sessionName]);
      agentId = service.agentId;
      siteName = this.site;
      if (!report.ok) throw new ProblemError('not-found', `there is no session named ${sessionName} at ${this.site}`);
    } else {
      const peer = peers.get(site);
      agentId = peer.agentId;
      siteName = peer.site;
      const answer = await peers.link(peer.agentId).call('cluster.report', { sessions: [sessionName] }, null, {
        waitForLinkMs: 5000,
        timeoutMs: 10_000,
      });
      [report] = ((answer.result ?? {}) as { reports?: SessionReport[] }).reports ?? [];
      if (!report?.ok) throw new ProblemError('not-found', `there is no session named ${sessionName} at ${siteName}`);
    }
    for (const other of this.processors.values()) {
      const found = other.definition.members.find((member) => member.sessionId === report.sessionId);
      if (found) {
        throw new ProblemError(
          'already-exists',
          `session ${report.session} is already in cluster ${other.definition.name} (as ${memberLabel(found)})`,
        );
      }
    }
    const member: MemberDefinition = { sessionId: report.sessionId, session: report.session, agentId, site: siteName, local };
    this.definitions.addMember(name, member);
    processor.definition.members.push(member);
    processor.syncMembers();
    processor.seed(member.sessionId, reportToView(report, Date.now())!);
    this.options.catalog.recordEvent('cluster.member-added', 'info', name, `added ${memberLabel(member)} to cluster ${name}`, {
      session: member.session,
      site: member.site,
    });
    return this.info(name);
  }

  removeMember(name: string, sessionName: string, site?: string): ClusterInfo {
    const processor = this.processor(name);
    const candidates = processor.definition.members.filter(
      (member) =>
        (member.session === sessionName || member.sessionId === sessionName) &&
        (site === undefined || member.site === site || member.agentId === site),
    );
    if (candidates.length === 0) {
      throw new ProblemError('not-found', `session ${sessionName}${site ? ` at ${site}` : ''} is not in cluster ${name}`);
    }
    if (candidates.length > 1) {
      throw new ProblemError('bad-request', `cluster ${name} has ${sessionName} at several sites; name the site`);
    }
    const member = candidates[0];
    this.definitions.removeMember(name, member.sessionId);
    processor.definition.members = processor.definition.members.filter((m) => m !== member);
    processor.syncMembers();
    this.options.catalog.recordEvent('cluster.member-removed', 'info', name, `removed ${memberLabel(member)} from cluster ${name}`, {
      session: member.session,
      site: member.site,
    });
    return this.info(name);
  }

  // --- reports ---

  info(name: string): ClusterInfo {
    const processor = this.processor(name);
    const { definition, mds } = processor;
    const current = processor.current();
    return {
      name: definition.name,
      processorSite: this.site,
      intervalSeconds: definition.intervalMs / 1000,
      timeoutSeconds: processor.timeoutMs / 1000,
      health: current.health,
      consistencyTime: current.consistencyTime,
      exposureSeconds: current.exposureSeconds,
      members: current.members,
      consolidatedAt: processor.consolidatedAt === null ? null : new Date(processor.consolidatedAt).toISOString(),
      masterDataSet: { lastSequence: mds.lastSequence, records: mds.recordCount, bytes: mds.bytes },
      createdAt: definition.createdAt,
    };
  }

  list(): ClusterInfo[] {
    return [...this.processors.keys()].map((name) => this.info(name));
  }

  /** The last `limit` records of a master data set kept here, or (with `site`) kept by a paired site. */
  async history(name: string, limit: number, site?: string): Promise<ClusterHistory> {
    if (site !== undefined && site !== this.site && site !== this.options.service.agentId) {
      const peer = this.options.peers.get(site);
      const answer = await this.options.peers
        .link(peer.agentId)
        .call('cluster.history', { cluster: name, limit }, null, { waitForLinkMs: 3000, timeoutMs: 30_000 });
      const parsed = ClusterHistorySchema.safeParse(answer.result);
      if (!parsed.success) throw new ProblemError('internal-error', `${peer.site} answered with a history that does not match the contract`);
      return parsed.data;
    }
    const { records, damage } = await this.processor(name).mds.read(limit);
    return { cluster: name, site: this.site, records, damage };
  }

  /** `cluster.history` from a paired site. */
  async servePeer(call: PeerCall<'cluster.history'>): Promise<PeerAnswer<'cluster.history'>> {
    const { cluster, limit } = call.params;
    const count = typeof limit === 'number' && Number.isSafeInteger(limit) && limit > 0 ? Math.min(limit, 10_000) : 100;
    return { result: await this.history(cluster, count) };
  }

  async close(): Promise<void> {
    registerClusterPeerServer(this.options.service, null);
    const processors = [...this.processors.values()];
    this.processors.clear();
    for (const processor of processors) {
      await processor.close();
      await processor.mds.close();
    }
  }
}
