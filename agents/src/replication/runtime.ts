import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import {
  PeerAcceptResponseSchema,
  ProblemError,
  ProblemSchema,
  type PeerAcceptRequest,
  type PeerAcceptResponse,
  type PeerInfo,
} from '@tandem/contract';
import type { AgentIdentity } from '../data-dir.ts';
import type { ExportCatalog } from '../storage/block-device.ts';
import type { FlashService } from '../flash/service.ts';
import type { StorageEngine } from '../storage/engine.ts';
import type { Authority } from '../tls/authority.ts';
import { certificateFingerprint } from '../tls/fingerprint.ts';
import { ClusterManager } from './clusters/manager.ts';
import { SessionHistoryRecorder } from './history/session-history.ts';
import { PeerLinkServer } from './link/peer-link.ts';
import { PeerRegistry } from './peers.ts';
import { ReplicationService } from './service.ts';
import { installFlashMirror } from './flash-mirror.ts';
import type { ReplicationFaults } from './faults.ts';
import { splitterExports } from '../write-path/splitter.ts';
import { consumePairingToken } from '../tls/pairing.ts';

export interface ReplicationRuntime {
  service: ReplicationService;
  peers: PeerRegistry;
  /** Clusters of sessions defined here, their processors and master data sets. */
  clusters: ClusterManager;
  /** Every session's history, sampled here and kept in the catalog. */
  history: SessionHistoryRecorder;
  /** NBD exports: every volume behind the splitter. */
  exports: ExportCatalog;
  linkAddress: string;
  /** Pairs this agent with another (the admin's `tandem-agent pair`). */
  pairWith(apiAddress: string, token: string, fingerprint?: string): Promise<PeerInfo>;
  /** Answers another agent's pairing request (POST /v1/peers/accept). */
  accept(request: PeerAcceptRequest): PeerAcceptResponse;
  close(): Promise<void>;
}

/** Starts the peer link listener and the replication service of an agent. */
export async function startReplication(options: {
  engine: StorageEngine;
  identity: AgentIdentity;
  tlsDir: string;
  authority: Authority;
  serverTls: { certificatePem: string; keyPem: string };
  apiAddress: () => string;
  link: { host: string; port: number };
  logger: Logger;
  /** Flash copy: a second tap source of the splitter (and where mirror hooks are installed). */
  flash?: FlashService;
  /** Faults a test injects (faults.ts); an agent passes faultsFromEnv(). */
  faults?: ReplicationFaults;
}): Promise<ReplicationRuntime> {
  const { engine, identity, logger } = options;
  const credentials = await PeerRegistry.linkCredentials(options.tlsDir, options.authority, options.serverTls);
  const peers = new PeerRegistry(engine.catalog, credentials, logger.child({ component: 'peers' }));
  const service = new ReplicationService(engine, peers, identity.agentId, identity.site, logger.child({ component: 'replication' }), options.faults);
  const server = new PeerLinkServer({
    credentials: credentials.server,
    peers: peers.records(),
    handler: service.handle,
    logger: logger.child({ component: 'link' }),
    onRefused: (reason, remote) => {
      engine.catalog.recordEvent('peer.refused', 'warning', remote, `refused a peer link connection from ${remote}: ${reason}`);
    },
  });
  peers.onChange((records) => server.updatePeers(records));
  const bound = await server.listen(options.link.host, options.link.port);
  const linkAddress = `${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}`;
  // Flash copy of mirrored volumes: marks, preserve mirror, coordinated points in time (flash.mirror).
  if (options.flash) installFlashMirror(service, options.flash);
  service.start();
  const clusters = await ClusterManager.open({
    service,
    peers,
    catalog: engine.catalog,
    dataDir: engine.paths.root,
    logger: logger.child({ component: 'clusters' }),
  });
  const history = new SessionHistoryRecorder(service, engine.catalog, logger.child({ component: 'history' }));
  history.start();

  const ourRequest = (token: string): PeerAcceptRequest => ({
    token,
    agentId: identity.agentId,
    site: identity.site,
    caCertificate: options.authority.certificatePem,
    linkAddress,
    apiAddress: options.apiAddress(),
  });

  return {
    service,
    peers,
    clusters,
    history,
    exports: service.journals.exports(splitterExports(engine.exports, options.flash ? [options.flash, service, service.journals] : [service, service.journals])),
    linkAddress,
    async pairWith(apiAddress, token, fingerprint) {
      const { body, serverCertificate } = await postAccept(apiAddress, ourRequest(token));
      const answer = PeerAcceptResponseSchema.parse(body);
      // Pin: the answering server must hold a certificate issued by the CA it handed us.
      const ca = new X509Certificate(answer.caCertificate);
      if (!serverCertificate.checkIssued(ca) || !serverCertificate.verify(ca.publicKey)) {
        throw new ProblemError('certificate-mismatch', `the agent at ${apiAddress} answered with a CA that did not issue its certificate`);
      }
      const seen = certificateFingerprint(serverCertificate.raw);
      if (fingerprint && fingerprint.toUpperCase() !== seen) {
        throw new ProblemError('certificate-mismatch', `the agent at ${apiAddress} presents ${seen}, not the expected ${fingerprint}`);
      }
      const row = peers.add({
        agentId: answer.agentId,
        site: answer.site,
        caPem: answer.caCertificate,
        linkAddress: answer.linkAddress,
        apiAddress,
      });
      engine.catalog.recordEvent('peer.paired', 'info', answer.site, `paired with site ${answer.site} (${apiAddress})`);
      return peers.info().find((peer) => peer.agentId === row.agentId)!;
    },
    accept(request) {
      if (request.agentId === identity.agentId) throw new ProblemError('bad-request', 'an agent cannot pair with itself');
      consumePairingToken(engine.catalog.db, request.token);
      peers.add({
        agentId: request.agentId,
        site: request.site,
        caPem: request.caCertificate,
        linkAddress: request.linkAddress,
        apiAddress: request.apiAddress,
      });
      engine.catalog.recordEvent('peer.paired', 'info', request.site, `paired with site ${request.site} (it asked, with a valid token)`);
      return {
        agentId: identity.agentId,
        site: identity.site,
        caCertificate: options.authority.certificatePem,
        linkAddress,
      };
    },
    async close() {
      history.close();
      await clusters.close();
      await service.close();
      peers.close();
      await server.close();
    },
  };
}

/** POSTs our pairing request to the other agent's unauthenticated accept route and keeps its certificate. */
function postAccept(
  apiAddress: string,
  body: PeerAcceptRequest,
): Promise<{ body: unknown; serverCertificate: X509Certificate }> {
  const match = /^\[?([^\]]+)\]?:(\d+)$/.exec(apiAddress.replace(/^https:\/\//, ''));
  if (!match) return Promise.reject(new ProblemError('bad-request', `${apiAddress} is not host:port`));
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: match[1],
        port: Number(match[2]),
        method: 'POST',
        path: '/v1/peers/accept',
        headers: { 'content-type': 'application/json', 'content-length': data.length },
        // Trust is established by the token and pinned from the answer (checked by the caller).
        rejectUnauthorized: false,
        agent: false,
        timeout: 10_000,
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk));
        response.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return reject(new ProblemError('agent-unreachable', `the agent at ${apiAddress} did not answer with JSON`));
          }
          if ((response.statusCode ?? 500) >= 400) {
            const problem = ProblemSchema.safeParse(parsed);
            return reject(
              problem.success
                ? new ProblemError(problem.data.problem, `the other agent refused: ${problem.data.message}`)
                : new ProblemError('agent-unreachable', `the agent at ${apiAddress} answered ${response.statusCode}`),
            );
          }
          if (!certificate) return reject(new ProblemError('certificate-mismatch', 'the other agent presented no certificate'));
          resolve({ body: parsed, serverCertificate: certificate });
        });
      },
    );
    let certificate: X509Certificate | undefined;
    request.on('socket', (socket) => {
      socket.once('secureConnect', () => {
        certificate = (socket as import('node:tls').TLSSocket).getPeerX509Certificate();
      });
    });
    request.on('timeout', () => request.destroy(new ProblemError('timeout', `the agent at ${apiAddress} did not answer in time`)));
    request.on('error', (error) =>
      reject(error instanceof ProblemError ? error : new ProblemError('agent-unreachable', `cannot reach ${apiAddress}: ${error.message}`)),
    );
    request.end(data);
  });
}
