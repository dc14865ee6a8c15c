import os from 'node:os';
import { HealthSchema, PairResponseSchema, ProblemError, type Health, type PairRequest, type Role } from '@tandem/contract';
import { agentRequest, problemFromResponse } from './agent-http.ts';
import { agentRoutes } from './agent-routes.ts';
import type { SiteCredentials } from './site-registry.ts';
import { fingerprintOfPem, generateClientKeyPair, sameFingerprint } from './tls-identity.ts';

export interface ProbeResult {
  health: Health;
  /** Fingerprint of the certificate the agent presented, for the administrator to confirm. */
  certificateFingerprint: string;
}

/** Asks an agent who it is (the unauthenticated health probe) and which certificate it presents. */
export async function probeAgent(address: string): Promise<ProbeResult> {
  const response = await agentRequest({ address, method: 'GET', path: agentRoutes.health, tls: {}, timeoutMs: 8_000 });
  if (response.status !== 200) throw problemFromResponse(address, response);
  const health = HealthSchema.safeParse(response.body);
  if (!health.success) throw new ProblemError('agent-unreachable', `${address} answered, but not as a Tandem agent`);
  return { health: health.data, certificateFingerprint: response.peerFingerprint };
}

export interface PairOptions {
  address: string;
  token: string;
  /** The fingerprint the administrator confirmed; the token is only sent to an agent presenting it. */
  expectedFingerprint: string;
  clientName?: string;
  /** The role to ask for (at most the token's; the token's own when left out). */
  role?: Role;
}

/**
 * Pairs with an agent: a fresh key pair, its SPKI public key and the one-time
 * token go to POST /v1/pair over a connection pinned to the confirmed
 * fingerprint; the agent answers with a client certificate and its CA.
 */
export async function pairWithAgent(options: PairOptions): Promise<SiteCredentials> {
  const keys = await generateClientKeyPair();
  const request: PairRequest = {
    token: options.token,
    publicKey: keys.publicKeyPem,
    clientName: options.clientName ?? `tandem-console@${os.hostname()}`.slice(0, 128),
    ...(options.role ? { role: options.role } : {}),
  };
  const response = await agentRequest({
    address: options.address,
    method: 'POST',
    path: agentRoutes.pair,
    body: request,
    tls: { pinnedFingerprint: options.expectedFingerprint },
  });
  if (response.status < 200 || response.status >= 300) throw problemFromResponse(options.address, response);
  const parsed = PairResponseSchema.safeParse(response.body);
  if (!parsed.success) throw new ProblemError('internal-error', `the agent at ${options.address} answered the pairing with something that is not a pairing answer`);
  const paired = parsed.data;
  if (!sameFingerprint(paired.certificateFingerprint, response.peerFingerprint)) {
    throw new ProblemError('certificate-mismatch', `the agent at ${options.address} claims fingerprint ${paired.certificateFingerprint} but presented ${response.peerFingerprint}`);
  }
  checkCertificate(paired.clientCertificate, 'client certificate', options.address);
  checkCertificate(paired.caCertificate, 'CA certificate', options.address);
  return {
    id: paired.agentId,
    site: paired.site,
    address: options.address,
    certificateFingerprint: response.peerFingerprint,
    caCertificate: paired.caCertificate,
    clientCertificate: paired.clientCertificate,
    clientKeyPem: keys.privateKeyPem,
    addedAt: new Date().toISOString(),
    ...(paired.role ? { role: paired.role } : {}),
  };
}

function checkCertificate(pem: string, what: string, address: string): void {
  try {
    fingerprintOfPem(pem);
  } catch {
    throw new ProblemError('internal-error', `the agent at ${address} sent a ${what} that is not a valid certificate`);
  }
}
