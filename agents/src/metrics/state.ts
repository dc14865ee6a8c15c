import { Counter, Gauge, type Registry } from 'prom-client';
import {
  alertSubjectText,
  PairStateSchema,
  SessionHealthSchema,
  SessionStateSchema,
  type AgentInfo,
  type Alert,
  type FlashSessionInfo,
  type PeerInfo,
  type PoolStats,
  type SessionInfo,
} from '@tandem/contract';
import type { SessionReader } from '../replication/session-reader.ts';
import type { SessionRecord } from '../replication/session-store.ts';

/** An async session's consistency rounds at the agent driving them (CutCoordinator.rounds). */
export interface RoundCounts {
  run: number;
  complete: number;
  incomplete: number;
}

/** Where the state metrics come from: the views the control API answers with, read at scrape time. */
export interface StateSources {
  agent(): AgentInfo;
  sessions: SessionReader;
  /** The session's round counts when this agent coordinates its rounds, else undefined. */
  rounds(session: SessionRecord): RoundCounts | undefined;
  peers(): PeerInfo[];
  flash(): FlashSessionInfo[];
  pool(): Promise<PoolStats>;
  /** The agent's active alerts (alerts/evaluator.ts); absent when it runs without them. */
  alerts?(): Alert[];
}

/** What one scrape read, once, before the collect callbacks fill the gauges from it. */
interface Snapshot {
  agent: AgentInfo;
  sessions: Array<{ info: SessionInfo; rounds: RoundCounts | undefined }>;
  peers: PeerInfo[];
  flash: FlashSessionInfo[];
  pool: PoolStats | null;
  alerts: Alert[];
}

const linkStates = ['connected', 'connecting', 'down'] as const;

/**
 * Gauges (and counters the code already keeps) of the agent's state:
 * sessions, copy sets, peer links, flash copy and the pool. Nothing is
 * tracked twice: `refresh()` reads the same views the control API serves
 * (SessionReader.info, the peer registry, flash sessions, pool stats) at
 * scrape time, and each metric's collect callback turns that snapshot into
 * series. A session or pair gone since the last scrape is gone from the
 * output (every collect starts from reset()).
 */
export class StateMetrics {
  private snapshot: Snapshot | null = null;

  constructor(
    registry: Registry,
    private readonly sources: StateSources,
    private readonly onError: (what: string, error: unknown) => void,
  ) {
    const registers = [registry];
    const read = (): Snapshot | null => this.snapshot;
    // Every series is set anew from the last snapshot at each scrape (a session or copy set gone is gone from the output).
    const collectFrom = <M extends { reset(): void }>(fill: (metric: M, snapshot: Snapshot) => void) =>
      function (this: M) {
        this.reset();
        const snapshot = read();
        if (snapshot) fill(this, snapshot);
      };
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (metric: Gauge<L>, snapshot: Snapshot) => void) =>
      new Gauge<L>({ name, help, labelNames, registers, collect: collectFrom(fill) });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (metric: Counter<L>, snapshot: Snapshot) => void) =>
      new Counter<L>({ name, help, labelNames, registers, collect: collectFrom(fill) });

    gauge('tandem_agent_info', 'The agent: site, id and version (always 1)', ['site', 'agent_id', 'version'], (metric, { agent }) => {
      metric.set({ site: agent.site, agent_id: agent.agentId, version: agent.version }, 1);
    });
    gauge('tandem_agent_start_time_seconds', 'When the agent started, seconds since the Unix epoch', [], (metric, { agent }) => {
      metric.set(Date.parse(agent.startedAt) / 1000);
    });

    // Sessions: one consistency group each, so consistency time and exposure are per session.
    gauge(
      'tandem_session_info',
      'A replication session as this agent sees it (always 1): type, this agent\'s role, the sites and the direction',
      ['session', 'type', 'role', 'h1_site', 'h2_site', 'direction'],
      (metric, { sessions }) => {
        for (const { info } of sessions) {
          metric.set({ session: info.name, type: info.type, role: info.role, h1_site: info.h1Site, h2_site: info.h2Site, direction: info.direction }, 1);
        }
      },
    );
    gauge('tandem_session_state', 'Session state: 1 for the state the session is in, 0 for the others', ['session', 'state'], (metric, { sessions }) => {
      for (const { info } of sessions) {
        for (const state of SessionStateSchema.options) metric.set({ session: info.name, state }, info.state === state ? 1 : 0);
      }
    });
    gauge('tandem_session_health', 'Session health: 1 for the health the session has, 0 for the others', ['session', 'health'], (metric, { sessions }) => {
      for (const { info } of sessions) {
        for (const health of SessionHealthSchema.options) metric.set({ session: info.name, health }, info.health === health ? 1 : 0);
      }
    });
    gauge(
      'tandem_session_consistency_timestamp_seconds',
      'The instant the secondary volumes hold a consistent image of, seconds since the Unix epoch (absent while there is none)',
      ['session'],
      (metric, { sessions }) => {
        for (const { info } of sessions) if (info.consistencyTime !== null) metric.set({ session: info.name }, Date.parse(info.consistencyTime) / 1000);
      },
    );
    gauge('tandem_session_exposure_seconds', 'How far the secondary volumes lag the primaries, seconds (absent while unknown)', ['session'], (metric, { sessions }) => {
      for (const { info } of sessions) if (info.exposureSeconds !== null) metric.set({ session: info.name }, info.exposureSeconds);
    });
    gauge('tandem_session_out_of_sync_bytes', 'Bytes of the session\'s copy sets that may differ between the sites', ['session'], (metric, { sessions }) => {
      for (const { info } of sessions) {
        metric.set({ session: info.name }, info.pairs.reduce((sum, pair) => sum + pair.outOfSyncTracks * pair.trackSize, 0));
      }
    });
    counter(
      'tandem_session_rounds_formed_total',
      'Async sessions, at the agent driving the rounds: consistency rounds cut at every primary agent (since its coordinator started)',
      ['session'],
      (metric, { sessions }) => {
        for (const { info, rounds } of sessions) if (rounds) metric.inc({ session: info.name }, rounds.complete);
      },
    );
    counter(
      'tandem_session_rounds_failed_total',
      'Async sessions, at the agent driving the rounds: consistency rounds some primary agent did not cut (since its coordinator started)',
      ['session'],
      (metric, { sessions }) => {
        for (const { info, rounds } of sessions) if (rounds) metric.inc({ session: info.name }, rounds.incomplete);
      },
    );

    // Copy sets (pairs), named by the session and the copy set's id.
    const copySetLabels = ['session', 'copy_set', 'h1_volume', 'h2_volume'] as const;
    type CopySetLabel = (typeof copySetLabels)[number];
    const eachCopySet = (
      sessions: Snapshot['sessions'],
      visit: (labels: Record<CopySetLabel, string>, pair: SessionInfo['pairs'][number]) => void,
    ) => {
      for (const { info } of sessions) {
        for (const pair of info.pairs) visit({ session: info.name, copy_set: pair.id, h1_volume: pair.h1Volume, h2_volume: pair.h2Volume }, pair);
      }
    };
    gauge('tandem_copy_set_state', 'Copy set state: 1 for the state the copy set is in, 0 for the others', [...copySetLabels, 'state'], (metric, { sessions }) => {
      eachCopySet(sessions, (labels, pair) => {
        for (const state of PairStateSchema.options) metric.set({ ...labels, state }, pair.state === state ? 1 : 0);
      });
    });
    gauge('tandem_copy_set_out_of_sync_bytes', 'Bytes of the copy set that may differ between the sites (out-of-sync tracks x track size)', copySetLabels, (metric, { sessions }) => {
      eachCopySet(sessions, (labels, pair) => metric.set(labels, pair.outOfSyncTracks * pair.trackSize));
    });
    gauge(
      'tandem_copy_set_resync_remaining_bytes',
      'Bytes the running initial copy or resync of the copy set still has to move (0 when none runs)',
      copySetLabels,
      (metric, { sessions }) => {
        eachCopySet(sessions, (labels, pair) => {
          let remaining = 0;
          if (pair.copyBytes) remaining = Math.max(0, pair.copyBytes.total - pair.copyBytes.done);
          else if (pair.state === 'syncing') remaining = pair.outOfSyncTracks * pair.trackSize;
          metric.set(labels, remaining);
        });
      },
    );
    gauge(
      'tandem_copy_set_target_changed_bytes',
      'Bytes written at the copy set\'s target since it became writable (after a failover)',
      copySetLabels,
      (metric, { sessions }) => {
        eachCopySet(sessions, (labels, pair) => metric.set(labels, pair.targetChangedTracks * pair.trackSize));
      },
    );

    // Peer links, per paired site.
    gauge('tandem_peer_link_state', 'Peer link to a paired site: 1 for the state it is in, 0 for the others', ['peer', 'state'], (metric, { peers }) => {
      for (const peer of peers) for (const state of linkStates) metric.set({ peer: peer.site, state }, peer.link === state ? 1 : 0);
    });
    gauge('tandem_peer_round_trip_seconds', 'Round trip to a paired site over the peer link, last measured, seconds (absent before a measurement)', ['peer'], (metric, { peers }) => {
      for (const peer of peers) if (peer.clock) metric.set({ peer: peer.site }, peer.clock.rttMs / 1000);
    });
    gauge('tandem_peer_clock_offset_seconds', 'A paired site\'s clock minus this agent\'s, last measured over the peer link, seconds', ['peer'], (metric, { peers }) => {
      for (const peer of peers) if (peer.clock) metric.set({ peer: peer.site }, peer.clock.offsetMs / 1000);
    });

    // Flash copy relationships.
    const flashLabels = ['session', 'pair', 'source', 'target'] as const;
    gauge('tandem_flash_copied_ratio', 'Share of a flash copy target\'s tracks it holds on its own (copied), 0 to 1', flashLabels, (metric, { flash }) => {
      for (const session of flash) {
        for (const pair of session.pairs) metric.set({ session: session.name, pair: pair.id, source: pair.source, target: pair.target }, pair.percent / 100);
      }
    });
    gauge('tandem_flash_copied_bytes', 'Bytes of a flash copy target it holds on its own (copied tracks x track size)', flashLabels, (metric, { flash }) => {
      for (const session of flash) {
        for (const pair of session.pairs) metric.set({ session: session.name, pair: pair.id, source: pair.source, target: pair.target }, pair.copiedTracks * pair.trackSize);
      }
    });

    // The pool.
    const pool = (name: string, help: string, value: (stats: PoolStats) => number) =>
      gauge(name, help, [], (metric, snapshot) => {
        if (snapshot.pool) metric.set(value(snapshot.pool));
      });
    pool('tandem_pool_used_bytes', 'Bytes of the pool\'s extents in use', (stats) => stats.usedBytes);
    pool('tandem_pool_capacity_bytes', 'Bytes the pool\'s extent files hold room for', (stats) => stats.extentCount * stats.trackSize);
    pool('tandem_pool_provisioned_bytes', 'Sum of the volumes\' virtual sizes (thin provisioning)', (stats) => stats.provisionedBytes);
    pool('tandem_pool_filesystem_free_bytes', 'Free bytes of the file system holding the pool', (stats) => stats.filesystemFreeBytes);
    pool('tandem_pool_volumes', 'Volumes in the pool (snapshots not counted)', (stats) => stats.volumes);

    // The agent's own alerts (alerts/): one series per active alert, gone once it clears.
    gauge(
      'tandem_alert_active',
      'An alert the agent raised and has not cleared (always 1): its kind, severity, session and subject',
      ['kind', 'severity', 'session', 'subject'],
      (metric, { alerts }) => {
        for (const alert of alerts) {
          metric.set({ kind: alert.kind, severity: alert.severity, session: alert.subject.session ?? '', subject: alertSubjectText(alert.subject) }, 1);
        }
      },
    );
  }

  /** Reads every source once for the scrape that follows; a source that fails leaves its series out, never the whole scrape. */
  async refresh(): Promise<void> {
    const { sources } = this;
    const sessions: Snapshot['sessions'] = [];
    for (const session of sources.sessions.sessions.values()) {
      try {
        sessions.push({ info: sources.sessions.info(session), rounds: sources.rounds(session) });
      } catch (error) {
        this.onError(`session ${session.name}`, error);
      }
    }
    const attempt = <T>(what: string, read: () => T, fallback: T): T => {
      try {
        return read();
      } catch (error) {
        this.onError(what, error);
        return fallback;
      }
    };
    const pool = await sources.pool().catch((error: unknown) => {
      this.onError('pool', error);
      return null;
    });
    this.snapshot = {
      agent: sources.agent(),
      sessions,
      peers: attempt('peers', () => sources.peers(), []),
      flash: attempt('flash copy', () => sources.flash(), []),
      pool,
      alerts: attempt('alerts', () => sources.alerts?.() ?? [], []),
    };
  }
}
