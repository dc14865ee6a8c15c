/**
 * The agent daemon: one storage engine, the control API, the NBD listener,
 * run.json and the data-dir lock, with a clean shutdown on SIGTERM/SIGINT.
 */
// The thread pool that serves the pool's file I/O is sized by bin/tandem-agent.cjs,
// before the ESM loader starts it (it cannot be resized from here).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import type { Server as TlsServer } from 'node:tls';
import { agentEventTypes, ProblemError, type AgentInfo } from '@tandem/contract';
import { AlertEvaluator, alertTimingFromEnv, type AlertTiming } from './alerts/evaluator.ts';
import { startApiServer, formatHostPort, type ApiServer } from './api/server.ts';
import type { RunInfo } from './data-dir.ts';
import { DataDirLock, readIdentity, removeRunInfo, writeRunInfo } from './cli/data-dir-files.ts';
import { applyClockSkew } from './clock.ts';
import { FlashService } from './flash/service.ts';
import { NbdServer } from './nbd/server.ts';
import { NbdTls } from './nbd/tls.ts';
import { NbdClientRegistry, nbdClientsFile } from './nbd/tls-clients.ts';
import { faultsFromEnv } from './replication/faults.ts';
import { startReplication } from './replication/runtime.ts';
import { dataDirPaths } from './data-dir.ts';
import type { AuditRetention } from './storage/audit-log.ts';
import { StorageEngine } from './storage/engine.ts';
import { loadServerTls } from './tls/files.ts';
import type { AgentMetrics } from './metrics/agent-metrics.ts';
import { agentPackageDir } from './package-dir.ts';
import type { SystemdNotifier } from './systemd.ts';

export const agentVersion: string = (JSON.parse(readFileSync(path.join(agentPackageDir(), 'package.json'), 'utf8')) as { version: string }).version;

export interface HostPort {
  host: string;
  port: number;
}

export interface AgentOptions {
  dataDir: string;
  api: HostPort;
  /** NBD over TCP; null for none. */
  nbd: HostPort | null;
  /** NBD over a Unix socket; null for none. */
  nbdSocket: string | null;
  /**
   * NBD over TCP requires TLS (NBD_OPT_STARTTLS with a client certificate
   * from this agent's CA or a PSK identity, see `tandem-agent nbd-client`).
   * Without it the NBD TCP listener must be on a loopback address.
   */
  nbdTls?: boolean;
  /** The peer link listener (mirroring between sites). */
  link: HostPort;
  /** Prometheus metrics (`GET /metrics`, plain HTTP, no authentication) on their own listener; null or absent for none. */
  metrics?: HostPort | null;
  /** How the audit trail is bounded (default: defaultAuditRetention, storage/audit-log.ts). */
  auditRetention?: AuditRetention;
  /** How often the alert rules run and how long a condition must stay away to clear (default: TANDEM_ALERT_INTERVAL_MS / TANDEM_ALERT_CLEAR_MS, else 5 s / 10 s). */
  alertTiming?: AlertTiming;
  logger?: Logger;
}

export interface RunningAgent {
  info: AgentInfo;
  runInfo: RunInfo;
  /**
   * Re-reads the server certificate and key from DATA/tls and serves them on
   * new control-API connections (SIGHUP, `systemctl reload`). The CA must be
   * the one the agent runs with; a certificate that does not match its key is
   * refused, and the current pair stays. Returns the new certificate's fingerprint.
   */
  reloadTls(): Promise<string>;
  /** Stops listening, closes the engine, removes run.json and releases the lock. Idempotent. */
  close(): Promise<void>;
}

/** Starts everything; on any failure undoes what was started and rethrows. */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const logger = options.logger ?? pino({ level: 'silent' });
  // Tests only: a host clock set wrong (TANDEM_CLOCK_SKEW_MS, see clock.ts).
  const skew = applyClockSkew();
  if (skew !== 0) logger.warn({ skewMs: skew }, 'TANDEM_CLOCK_SKEW_MS: this agent\'s wall clock runs off by the given amount (for tests)');
  const { dataDir } = options;
  if (options.nbd && !options.nbdTls && !isLoopback(options.nbd.host)) {
    throw Object.assign(
      new Error(
        `NBD on ${options.nbd.host} would serve volumes unencrypted and without client authentication to the network: ` +
          'add --tls (clients then need a certificate or PSK key from `tandem-agent nbd-client add`), or listen on a loopback address',
      ),
      { code: 'ERR_NBD_TLS_REQUIRED' },
    );
  }
  const identity = await readIdentity(dataDir);
  const lock = DataDirLock.acquireSync(dataDir);
  const undo: Array<() => Promise<void> | void> = [() => lock.release()];
  const rollback = async () => {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => {});
  };
  try {
    // Metrics listen first: an address that cannot be bound stops the start before anything else runs.
    // prom-client and the metrics listener load only when asked for (a faster start without).
    const metricsModules = options.metrics ? await Promise.all([import('./metrics/agent-metrics.ts'), import('./metrics/server.ts')]) : null;
    const metrics: AgentMetrics | null = metricsModules ? new metricsModules[0].AgentMetrics(logger.child({ component: 'metrics' })) : null;
    const metricsServer = metrics && metricsModules && options.metrics
      ? await metricsModules[1].startMetricsServer({ host: options.metrics.host, port: options.metrics.port, metrics, logger: logger.child({ component: 'metrics' }) })
      : null;
    if (metricsServer) {
      undo.push(() => metricsServer.close());
      if (!isLoopback(options.metrics!.host)) {
        logger.warn({ metrics: metricsServer.address }, 'metrics are served without authentication on a non-loopback address');
      }
    }
    const tls = await loadServerTls(dataDir);
    let servedFingerprint = tls.fingerprint;
    const engine = await StorageEngine.open(dataDir);
    undo.push(() => engine.close());
    if (metrics) engine.setMeter(metrics.storage);
    const startedAt = new Date().toISOString();
    const runInfo: RunInfo = {
      pid: process.pid,
      apiAddress: '',
      nbdAddress: null,
      nbdSocket: null,
      linkAddress: null,
      metricsAddress: metricsServer?.address ?? null,
      startedAt,
    };
    const info = (): AgentInfo => ({
      site: identity.site,
      agentId: identity.agentId,
      version: agentVersion,
      trackSize: engine.trackSize,
      startedAt,
      apiAddress: runInfo.apiAddress,
      nbdAddress: runInfo.nbdAddress,
      nbdSocket: runInfo.nbdSocket,
      certificateFingerprint: servedFingerprint,
    });
    // Flash copy resumes before replication starts and before any host write arrives.
    const flash = new FlashService({ engine, logger: logger.child({ component: 'flash' }) });
    flash.start();
    undo.push(() => flash.close());
    const replication = await startReplication({
      engine,
      identity,
      tlsDir: dataDirPaths(dataDir).tls,
      authority: tls.authority,
      serverTls: tls,
      apiAddress: () => runInfo.apiAddress,
      link: options.link,
      logger,
      flash,
      faults: faultsFromEnv(),
    });
    undo.push(() => replication.close());
    runInfo.linkAddress = replication.linkAddress;
    // Alert rules read the same views as the API and the metrics (alerts/evaluator.ts).
    const alerts = new AlertEvaluator(
      engine.catalog,
      {
        agent: info,
        sessions: replication.service,
        pool: () => engine.poolStats(),
        backlog: (session) => {
          const shipper = replication.service.mirroring.shippers.get(session.id);
          return shipper ? { bytes: shipper.backlogBytes, limitBytes: shipper.backlogLimitBytes } : undefined;
        },
        journal: (session) => replication.service.journals.warnings(session.id),
      },
      logger.child({ component: 'alerts' }),
      options.alertTiming ?? alertTimingFromEnv(),
    );
    undo.push(() => alerts.close());
    const api: ApiServer = await startApiServer({
      host: options.api.host,
      port: options.api.port,
      tls,
      deps: { engine, authority: tls.authority, agentInfo: info, replication, flash, auditRetention: options.auditRetention, alerts },
      logger: logger.child({ component: 'api' }),
    });
    undo.push(() => api.close());
    runInfo.apiAddress = api.address;
    // Hosts reach volumes through the splitter: every write passes the replication taps.
    const nbdTls = options.nbdTls
      ? new NbdTls({
          certificatePem: tls.certificatePem,
          keyPem: tls.keyPem,
          caPem: tls.caPem,
          clients: new NbdClientRegistry(nbdClientsFile(dataDirPaths(dataDir).tls)),
        })
      : null;
    metrics?.watch({
      agent: info,
      sessions: replication.service,
      rounds: (session) => replication.service.rounds.coordinatorOf(session)?.rounds,
      peers: () => replication.peers.info(),
      flash: () => flash.list(),
      pool: () => engine.poolStats(),
      alerts: () => alerts.store.active(),
    });
    const nbd = new NbdServer({
      exports: replication.exports,
      logger: logger.child({ component: 'nbd' }),
      tls: nbdTls,
      meters: metrics?.nbd ?? null,
    });
    undo.push(() => nbd.close());
    if (options.nbd) {
      const bound = await nbd.listenTcp(options.nbd.host, options.nbd.port);
      runInfo.nbdAddress = formatHostPort(bound.host, bound.port);
    }
    if (options.nbdSocket) {
      await nbd.listenUnix(options.nbdSocket);
      runInfo.nbdSocket = options.nbdSocket;
    }
    await writeRunInfo(dataDir, runInfo);
    undo.push(() => removeRunInfo(dataDir));
    engine.catalog.recordEvent(agentEventTypes.agentStarted, 'info', identity.site, `agent ${identity.site} started`, {
      pid: process.pid,
      version: agentVersion,
      apiAddress: runInfo.apiAddress,
      nbdAddress: runInfo.nbdAddress,
    });
    alerts.start();
    logger.info({ api: runInfo.apiAddress, nbd: runInfo.nbdAddress, nbdSocket: runInfo.nbdSocket, metrics: runInfo.metricsAddress }, 'agent started');

    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        logger.info('agent stopping');
        // Data path first so no write lands after the engine's final checkpoint.
        await nbd.close().catch((error: unknown) => logger.error({ err: error }, 'closing NBD failed'));
        await api.close().catch((error: unknown) => logger.error({ err: error }, 'closing the API failed'));
        await alerts.close().catch((error: unknown) => logger.error({ err: error }, 'closing alerts failed'));
        await metricsServer?.close().catch((error: unknown) => logger.error({ err: error }, 'closing the metrics listener failed'));
        await replication.close().catch((error: unknown) => logger.error({ err: error }, 'closing replication failed'));
        await flash.close().catch((error: unknown) => logger.error({ err: error }, 'closing flash copy failed'));
        try {
          engine.catalog.recordEvent(agentEventTypes.agentStopped, 'info', identity.site, `agent ${identity.site} stopped`);
        } catch (error) {
          logger.error({ err: error }, 'recording agent.stopped failed');
        }
        await engine.close();
        await removeRunInfo(dataDir);
        lock.release();
        logger.info('agent stopped');
      })();
      return closing;
    };
    const reloadTls = async () => {
      const next = await loadServerTls(dataDir);
      if (next.caPem !== tls.caPem) {
        throw new ProblemError('conflict', `the CA certificate in ${dataDirPaths(dataDir).tls} is not the one this agent runs with: a reload only replaces the server certificate and key`);
      }
      try {
        (api.app.server as unknown as TlsServer).setSecureContext({ key: next.keyPem, cert: next.certificatePem, ca: next.caPem, minVersion: 'TLSv1.2' });
      } catch (error) {
        throw new ProblemError('bad-request', `the server certificate and key in ${dataDirPaths(dataDir).tls} do not make a TLS identity: ${(error as Error).message}`);
      }
      servedFingerprint = next.fingerprint;
      return next.fingerprint;
    };
    return { info: info(), runInfo: { ...runInfo }, reloadTls, close };
  } catch (error) {
    await rollback();
    throw error;
  }
}

/** Runs until SIGTERM or SIGINT, then shuts down cleanly; a second signal forces exit. */
export function closeOnSignals(agent: RunningAgent, logger: Logger, options: { timeoutMs?: number; systemd?: SystemdNotifier | null } = {}): void {
  const { timeoutMs = 30_000, systemd = null } = options;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without a clean shutdown');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    systemd?.stopping(`shutting down (${signal})`);
    const timer = setTimeout(() => {
      logger.error('clean shutdown timed out');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    agent.close().then(
      () => {
        systemd?.close();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // SIGHUP (`systemctl reload`): the server certificate and key again from DATA/tls.
  let reloading: Promise<void> | null = null;
  process.on('SIGHUP', () => {
    if (stopping || reloading) return;
    systemd?.reloading();
    reloading = agent
      .reloadTls()
      .then(
        (fingerprint) => {
          logger.info({ certificateFingerprint: fingerprint }, 'reloaded the TLS certificate');
          systemd?.ready(`reloaded: certificate ${fingerprint}`);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'reload failed; the current certificate stays');
          systemd?.ready(`reload failed, the current certificate stays: ${(error as Error).message}`);
        },
      )
      .finally(() => (reloading = null));
  });
}

/** Whether a listen address reaches this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare) || /^::ffff:127\./.test(bare);
}

export { formatHostPort, DataDirLock, readIdentity };
