import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ProblemError, type PeerInfo } from '@tandem/contract';
import type { Catalog } from '../storage/catalog.ts';
import { issueWithNewKey, type Authority } from '../tls/authority.ts';
import { certificateFingerprint } from '../tls/fingerprint.ts';
import { clockSkewInfo, describeSkew, skewWorthWarning } from './link/clock-offset.ts';
import { PeerLinkClient, type LinkCredentials, type PeerRecord } from './link/peer-link.ts';

interface PeerRow extends PeerRecord {
  apiAddress: string | null;
  pairedAt: string;
}

/**
 * The paired sites: pinned CA certificates in the catalog's `peers` table,
 * and one link client per site, dialled on first use.
 */
export class PeerRegistry {
  private readonly rows = new Map<string, PeerRow>();
  private readonly clients = new Map<string, PeerLinkClient>();
  /** Set by close(): the agent is stopping; links asked for afterwards never dial. */
  private closed = false;
  private readonly listeners: Array<(peers: PeerRecord[]) => void> = [];

  constructor(
    private readonly catalog: Catalog,
    readonly credentials: { client: LinkCredentials; server: LinkCredentials },
    private readonly logger: Logger,
  ) {
    const rows = catalog.db.prepare('SELECT * FROM peers').all() as Array<Record<string, string | null>>;
    for (const row of rows) {
      this.rows.set(row.agent_id!, {
        agentId: row.agent_id!,
        site: row.site!,
        caPem: row.ca_pem!,
        caFingerprint: row.ca_fingerprint!,
        linkAddress: row.link_address!,
        apiAddress: row.api_address,
        pairedAt: row.paired_at!,
      });
    }
  }

  /** Loads (making on first use) the certificate this agent presents when it dials a peer. */
  static async linkCredentials(
    tlsDir: string,
    authority: Authority,
    server: { certificatePem: string; keyPem: string },
  ): Promise<{ client: LinkCredentials; server: LinkCredentials }> {
    const certificateFile = path.join(tlsDir, 'peer.pem');
    const keyFile = path.join(tlsDir, 'peer-key.pem');
    let certificatePem: string;
    let keyPem: string;
    try {
      [certificatePem, keyPem] = await Promise.all([readFile(certificateFile, 'utf8'), readFile(keyFile, 'utf8')]);
    } catch {
      const issued = await issueWithNewKey(authority, { commonName: 'Tandem peer link', usage: 'client' });
      certificatePem = issued.certificatePem;
      keyPem = issued.keyPem;
      await writeFile(keyFile, keyPem, { mode: 0o600 });
      await writeFile(certificateFile, certificatePem, { mode: 0o644 });
    }
    const caPem = authority.certificatePem;
    return {
      client: { certificatePem, keyPem, caPem },
      server: { certificatePem: server.certificatePem, keyPem: server.keyPem, caPem },
    };
  }

  records(): PeerRecord[] {
    return [...this.rows.values()];
  }

  onChange(listener: (peers: PeerRecord[]) => void): void {
    this.listeners.push(listener);
  }

  /** A paired site by agent id or site name. */
  get(agentIdOrSite: string): PeerRow {
    const direct = this.rows.get(agentIdOrSite);
    if (direct) return direct;
    for (const row of this.rows.values()) if (row.site === agentIdOrSite) return row;
    throw new ProblemError('not-paired', `no paired site is named ${agentIdOrSite}; pair the sites first (tandem-agent pair)`);
  }

  /** Stores (or replaces) a paired site and trusts it on the link. */
  add(peer: { agentId: string; site: string; caPem: string; linkAddress: string; apiAddress: string | null }): PeerRow {
    const row: PeerRow = {
      ...peer,
      caFingerprint: certificateFingerprint(peer.caPem),
      pairedAt: new Date().toISOString(),
    };
    this.catalog.db
      .prepare(
        `INSERT INTO peers (agent_id, site, ca_pem, ca_fingerprint, link_address, api_address, paired_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(agent_id) DO UPDATE SET site = excluded.site, ca_pem = excluded.ca_pem,
           ca_fingerprint = excluded.ca_fingerprint, link_address = excluded.link_address,
           api_address = excluded.api_address, paired_at = excluded.paired_at`,
      )
      .run(row.agentId, row.site, row.caPem, row.caFingerprint, row.linkAddress, row.apiAddress, row.pairedAt);
    this.rows.set(row.agentId, row);
    this.clients.get(row.agentId)?.close();
    this.clients.delete(row.agentId);
    for (const listener of this.listeners) listener(this.records());
    return row;
  }

  /** The link to a paired site (dialled on first use, then kept up). */
  link(agentId: string): PeerLinkClient {
    let client = this.clients.get(agentId);
    if (!client) {
      const peer = this.get(agentId);
      const created = new PeerLinkClient(peer, this.credentials.client, this.logger.child({ peer: peer.site }));
      client = created;
      if (this.closed) {
        // The agent is stopping (its catalog may be closed already): a link that never comes up and records
        // nothing; its calls fail with link-down as on any link that is down.
        created.close();
        return created;
      }
      // A clock far off the other's is said once per link: times it stamps are read in this agent's clock (clock.ts).
      let skewReported = false;
      created.clock.onEstimate = (estimate) => {
        // Said again if it comes back after it was set right.
        if (!skewWorthWarning(estimate)) skewReported = false;
        if (skewReported || !skewWorthWarning(estimate)) return;
        skewReported = true;
        this.catalog.recordEvent(
          'link.clock-skew',
          'warning',
          peer.site,
          `${describeSkew(peer.site, estimate)}; times ${peer.site} stamps are read in this agent's clock, but set the hosts' clocks right (NTP)`,
          { offsetMs: Math.round(estimate.offsetMs), rttMs: estimate.rttMs },
        );
      };
      created.on('state', (state: string, detail?: string) => {
        if (state === 'connected') {
          this.catalog.recordEvent('link.up', 'info', peer.site, `link to ${peer.site} is up`);
        } else if (state === 'down' && detail !== 'closed' && detail !== created.problem?.message) {
          // (A refused handshake is recorded once as link.refused below, not at every slow redial.)
          this.catalog.recordEvent('link.down', 'warning', peer.site, `link to ${peer.site} is down: ${detail ?? 'unknown'}`);
        }
      });
      // Another major version of the peer protocol: recorded once per distinct refusal (the link retries slowly).
      created.on('refused', (problem: ProblemError) => {
        this.catalog.recordEvent('link.refused', 'error', peer.site, `link to ${peer.site} refused: ${problem.message}`, {
          problem: problem.problem,
          ...problem.detail,
        });
      });
      this.clients.set(agentId, client);
    }
    return client;
  }

  /** Points the link to a site at another address (a proxy, a moved agent). */
  setLinkAddress(agentIdOrSite: string, address: string): void {
    const peer = this.get(agentIdOrSite);
    this.catalog.db.prepare('UPDATE peers SET link_address = ? WHERE agent_id = ?').run(address, peer.agentId);
    peer.linkAddress = address;
    this.clients.get(peer.agentId)?.retarget(address);
  }

  info(): PeerInfo[] {
    return [...this.rows.values()].map((row) => {
      const client = this.clients.get(row.agentId);
      return {
        agentId: row.agentId,
        site: row.site,
        linkAddress: row.linkAddress,
        apiAddress: row.apiAddress,
        caFingerprint: row.caFingerprint,
        pairedAt: row.pairedAt,
        link: client ? client.state : 'down',
        linkProblem: client?.problem?.toJSON() ?? null,
        clock: clockSkewInfo(client?.clock.estimate ?? null),
      };
    });
  }

  close(): void {
    this.closed = true;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
