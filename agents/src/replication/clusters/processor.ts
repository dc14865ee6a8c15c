import type { Logger } from 'pino';
import type { ClusterMember, SessionHealth, Severity } from '@tandem/contract';
import type { Catalog } from '../../storage/catalog.ts';
import { problemMessage } from '../problem-message.ts';
import type { PeerRegistry } from '../peers.ts';
import type { SessionReader } from '../session-reader.ts';
import { consolidate, type Consolidated, type MemberDefinition, type MemberReport, type MemberView } from './consolidate.ts';
import type { MasterDataSet } from './mds-store.ts';
import { reportSessions, type SessionReport } from './peer-requests.ts';

/** A cluster as this agent defines it. */
export interface ClusterDefinition {
  name: string;
  intervalMs: number;
  /** null: three intervals. */
  timeoutMs: number | null;
  createdAt: string;
  members: MemberDefinition[];
}

export interface ProcessorDeps {
  service: SessionReader;
  peers: PeerRegistry;
  catalog: Catalog;
  agentId: string;
  logger: Logger;
}

const severityOf: Record<SessionHealth, Severity> = { severe: 'error', warning: 'warning', normal: 'info', inactive: 'info' };

export function memberLabel(member: { session: string; site: string }): string {
  return `${member.session}@${member.site}`;
}

/** Turns a member's report into what the processor keeps, or null when it failed. */
export function reportToView(report: SessionReport, receivedAt: number): MemberReport | null {
  if (!report.ok) return null;
  return {
    state: report.state,
    health: report.health,
    consistencyTime: report.consistencyTime,
    exposureSeconds: report.exposureSeconds,
    detail: report.detail,
    receivedAt,
  };
}

/**
 * The processor of one cluster, run by the agent where the cluster is
 * defined. Every interval it gathers each member's report (local sessions
 * from the replication service, remote ones with `cluster.report` over the
 * peer link, one request per agent in flight at a time), consolidates them,
 * appends the result to the master data set and records health changes as
 * events.
 */
export class ClusterProcessor {
  private readonly views = new Map<string, MemberView>();
  private readonly inflight = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  private readonly startedAt = Date.now();
  /** Records are written once every member reported or the timeout passed since the start. */
  private settled = false;
  private lastHealth: SessionHealth | null;
  private readonly unknown = new Set<string>();
  private mdsFailing = false;
  consolidatedAt: number | null = null;

  constructor(
    readonly definition: ClusterDefinition,
    readonly mds: MasterDataSet,
    private readonly deps: ProcessorDeps,
    lastHealth: SessionHealth | null,
  ) {
    this.lastHealth = lastHealth;
    this.syncMembers();
  }

  get timeoutMs(): number {
    return this.definition.timeoutMs ?? 3 * this.definition.intervalMs;
  }

  /** Picks up added and removed members. */
  syncMembers(): void {
    const ids = new Set(this.definition.members.map((member) => member.sessionId));
    for (const id of [...this.views.keys()]) if (!ids.has(id)) this.views.delete(id);
    for (const member of this.definition.members) {
      const view = this.views.get(member.sessionId);
      if (view) view.definition = member;
      else this.views.set(member.sessionId, { definition: member, last: null, lastError: null });
    }
  }

  /** Seeds a member's view with a report just received (when it was added). */
  seed(sessionId: string, report: MemberReport): void {
    const view = this.views.get(sessionId);
    if (view) {
      view.last = report;
      view.lastError = null;
    }
  }

  start(): void {
    this.schedule(0);
  }

  /** Restarts the schedule (the interval changed). */
  reschedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.running) this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const started = Date.now();
      this.running = this.tick()
        .catch((error) => this.deps.logger.warn({ cluster: this.definition.name, error: problemMessage(error) }, 'cluster processor failed'))
        .finally(() => {
          this.running = null;
          this.schedule(Math.max(0, started + this.definition.intervalMs - Date.now()));
        });
    }, delayMs);
    this.timer.unref();
  }

  /** The current consolidation (members aged to now). */
  current(now = Date.now()): Consolidated {
    return consolidate([...this.views.values()], now, this.timeoutMs);
  }

  /** One round: gather (waiting a bounded time for remote answers), consolidate, record. */
  async tick(): Promise<void> {
    const gathered = this.gather();
    const waitMs = Math.min(this.definition.intervalMs / 2, 2000);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([gathered, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
    if (this.closed) return;
    const now = Date.now();
    const result = this.current(now);
    this.consolidatedAt = now;
    if (!this.settled) {
      const allReported = [...this.views.values()].every((view) => view.last !== null);
      if (!allReported && now - this.startedAt < this.timeoutMs) return;
      this.settled = true;
    }
    this.recordChanges(result);
    try {
      await this.mds.append({
        time: new Date(now).toISOString(),
        cluster: this.definition.name,
        health: result.health,
        consistencyTime: result.consistencyTime,
        exposureSeconds: result.exposureSeconds,
        members: result.members.map((member) => ({
          session: member.session,
          site: member.site,
          status: member.status,
          state: member.state,
          health: member.health,
          consistencyTime: member.consistencyTime,
          exposureSeconds: member.exposureSeconds,
          reportedAt: member.reportedAt,
        })),
      });
      if (this.mdsFailing) {
        this.mdsFailing = false;
        this.deps.catalog.recordEvent('cluster.mds', 'info', this.definition.name, `master data set of ${this.definition.name} is written again`);
      }
    } catch (error) {
      if (!this.closed && !this.mdsFailing) {
        this.mdsFailing = true;
        this.deps.catalog.recordEvent(
          'cluster.mds',
          'error',
          this.definition.name,
          `cannot append to the master data set of ${this.definition.name}: ${problemMessage(error)}`,
        );
      }
    }
  }

  /** Asks every member for its report; resolves when all answered or failed. */
  gather(): Promise<void> {
    const now = Date.now();
    const remote = new Map<string, MemberView[]>();
    for (const view of this.views.values()) {
      const member = view.definition;
      if (member.local) {
        const [report] = reportSessions(this.deps.service, [member.sessionId]);
        this.apply(view, report, now);
      } else {
        const list = remote.get(member.agentId) ?? [];
        list.push(view);
        remote.set(member.agentId, list);
      }
    }
    const waits: Promise<void>[] = [];
    for (const [agentId, views] of remote) {
      let pending = this.inflight.get(agentId);
      if (!pending) {
        pending = this.ask(agentId, views).finally(() => this.inflight.delete(agentId));
        this.inflight.set(agentId, pending);
      }
      waits.push(pending);
    }
    return Promise.all(waits).then(() => undefined);
  }

  private async ask(agentId: string, views: MemberView[]): Promise<void> {
    const timeoutMs = this.timeoutMs;
    try {
      const link = this.deps.peers.link(agentId);
      const answer = await link.call(
        'cluster.report',
        { sessions: views.map((view) => view.definition.sessionId) },
        null,
        { waitForLinkMs: timeoutMs, timeoutMs },
      );
      const reports = ((answer.result ?? {}) as { reports?: SessionReport[] }).reports ?? [];
      const receivedAt = Date.now();
      for (const view of views) {
        const found = reports.find((r) => r.key === view.definition.sessionId);
        // Its consistency time is in its clock: the cluster's minimum is taken in this agent's (clock.ts).
        const report = found?.ok ? { ...found, consistencyTime: this.deps.service.toLocalIso(agentId, found.consistencyTime) } : found;
        this.apply(view, report ?? { key: view.definition.sessionId, ok: false, error: 'the site did not report it' }, receivedAt);
      }
    } catch (error) {
      const message = `${views[0]?.definition.site ?? agentId} does not answer: ${problemMessage(error)}`;
      for (const view of views) view.lastError = message;
    }
  }

  private apply(view: MemberView, report: SessionReport, receivedAt: number): void {
    const last = reportToView(report, receivedAt);
    if (last) {
      view.last = last;
      view.lastError = null;
    } else if (!report.ok) {
      view.lastError = report.error;
    }
  }

  /** Events: members going silent or reporting again, and the cluster's health changing. */
  private recordChanges(result: Consolidated): void {
    const { catalog } = this.deps;
    const name = this.definition.name;
    for (const member of result.members) {
      const label = memberLabel(member);
      if (member.status === 'unknown' && !this.unknown.has(member.sessionId)) {
        this.unknown.add(member.sessionId);
        catalog.recordEvent('cluster.member', 'warning', name, `cluster ${name}: member ${label} is unknown (${member.detail})`, {
          session: member.session,
          site: member.site,
          status: 'unknown',
        });
      } else if (member.status === 'reporting' && this.unknown.has(member.sessionId)) {
        this.unknown.delete(member.sessionId);
        catalog.recordEvent('cluster.member', 'info', name, `cluster ${name}: member ${label} reports again (${member.state})`, {
          session: member.session,
          site: member.site,
          status: 'reporting',
        });
      }
    }
    for (const id of [...this.unknown]) if (!this.views.has(id)) this.unknown.delete(id);
    if (result.health !== this.lastHealth) {
      const why = describe(result.members);
      catalog.recordEvent(
        'cluster.health',
        severityOf[result.health],
        name,
        `cluster ${name}: health ${this.lastHealth ?? 'none'} -> ${result.health}${why ? ` (${why})` : ''}`,
        {
          from: this.lastHealth,
          to: result.health,
          consistencyTime: result.consistencyTime,
          exposureSeconds: result.exposureSeconds,
        },
      );
      this.lastHealth = result.health;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}

/** The members that make a cluster less than normal, in a few words. */
function describe(members: ClusterMember[]): string {
  return members
    .filter((member) => member.health === 'unknown' || member.health === 'warning' || member.health === 'severe')
    .map((member) => `${memberLabel(member)} ${member.health === 'unknown' ? 'unknown' : `${member.state}, ${member.health}`}`)
    .join('; ');
}
