/**
 * `POST /v1/pairing-tokens`: a paired client mints a one-time token over the
 * API (what the console uses to pair two of its sites); anonymous callers
 * are refused, and the token pairs once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PairingTokenSchema, PairResponseSchema, ProblemSchema } from '@tandem/contract';
import { AgentApiClient } from '../src/cli/api-client.ts';
import { loadAdminCredentials } from '../src/tls/files.ts';
import { generateKeyPair, publicKeyToPem } from '../src/tls/x509.ts';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';

let agent: AgentProcess;
let anonymous: AgentApiClient;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'token-site' });
  anonymous = new AgentApiClient(agent.apiAddress, { caPem: (await loadAdminCredentials(agent.dataDir)).caPem });
});

afterAll(async () => {
  anonymous?.close();
  await agent?.stop();
});

describe('POST /v1/pairing-tokens', () => {
  it('refuses a caller without a client certificate', async () => {
    const response = await anonymous.request('POST', '/v1/pairing-tokens');
    expect(response.status).toBe(401);
    expect(ProblemSchema.parse(response.body).problem).toBe('unauthenticated');
  });

  it('gives a paired client a one-time token that pairs exactly once', async () => {
    const response = await agent.api.request('POST', '/v1/pairing-tokens');
    expect(response.status).toBe(201);
    const minted = PairingTokenSchema.parse(response.body);
    expect(minted.token).toMatch(/^tdm_/);
    expect(Date.parse(minted.expiresAt)).toBeGreaterThan(Date.now());
    expect(minted.certificateFingerprint).toBe((await agent.api.agentInfo()).certificateFingerprint);

    const publicKey = await publicKeyToPem((await generateKeyPair()).publicKey);
    const first = await anonymous.request('POST', '/v1/pair', { token: minted.token, publicKey, clientName: 'minted' });
    expect(first.status).toBe(200);
    PairResponseSchema.parse(first.body);
    const again = await anonymous.request('POST', '/v1/pair', { token: minted.token, publicKey, clientName: 'again' });
    expect(again.status).toBe(403);
    expect(ProblemSchema.parse(again.body).problem).toBe('token-invalid');
  });
});
