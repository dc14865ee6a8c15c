/**
 * Roles with real agent processes and real TLS clients: consoles paired as
 * monitor, operator and administrator (and a certificate issued before roles
 * existed) call a running pair of agents. A monitor cannot fail over or
 * delete a volume (403 `forbidden-role`, naming both roles), an operator can
 * fail over but not delete a volume, an administrator can do both, an old
 * certificate keeps its full rights; refused calls change nothing and are
 * audited with the caller's role. Pairing asks for a role the token grants
 * at most; only an administrator mints tokens and lists or revokes clients.
 */
import { readFile } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentInfoSchema,
  AuditListSchema,
  ClientListSchema,
  PairingTokenSchema,
  PairResponseSchema,
  ProblemSchema,
  type Role,
} from '@tandem/contract';
import { AgentApiClient } from '../src/cli/api-client.ts';
import { dataDirPaths } from '../src/data-dir.ts';
import { issueWithNewKey, loadAuthority } from '../src/tls/authority.ts';
import { certificateFingerprint } from '../src/tls/fingerprint.ts';
import { tlsPaths } from '../src/tls/files.ts';
import { generateKeyPair, privateKeyToPem, publicKeyToPem } from '../src/tls/keys.ts';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { agentCliJson } from './helpers/run-command.ts';
import { sessionPath, showSession, startOneCopySet, until, untilDrained } from './helpers/session-api.ts';

let alpha: AgentProcess;
let beta: AgentProcess;
const clients: AgentApiClient[] = [];

async function caPem(agent: AgentProcess): Promise<string> {
  return readFile(tlsPaths(agent.dataDir).caCertificate, 'utf8');
}

async function anonymous(agent: AgentProcess): Promise<AgentApiClient> {
  const client = new AgentApiClient(agent.apiAddress, { caPem: await caPem(agent) });
  clients.push(client);
  return client;
}

/** A console paired the way the console pairs: a token from `tandem-agent token --role`, then `POST /v1/pair`. */
async function pairedAs(agent: AgentProcess, tokenRole: Role, name: string, askedRole?: Role): Promise<AgentApiClient> {
  const { token } = await agentCliJson<{ token: string }>(agent, ['token', '--role', tokenRole]);
  const keys = await generateKeyPair();
  const response = await (await anonymous(agent)).request('POST', '/v1/pair', {
    token,
    publicKey: await publicKeyToPem(keys.publicKey),
    clientName: name,
    ...(askedRole ? { role: askedRole } : {}),
  });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  const paired = PairResponseSchema.parse(response.body);
  expect(paired.role).toBe(askedRole ?? tokenRole);
  const client = new AgentApiClient(agent.apiAddress, {
    caPem: paired.caCertificate,
    certificatePem: paired.clientCertificate,
    keyPem: await privateKeyToPem(keys.privateKey),
  });
  clients.push(client);
  return client;
}

/** A client certificate as agents issued them before roles (no role in the subject), recorded the way they recorded it. */
async function legacyClient(agent: AgentProcess): Promise<AgentApiClient> {
  const files = tlsPaths(agent.dataDir);
  const authority = await loadAuthority(await readFile(files.caCertificate, 'utf8'), await readFile(files.caKey, 'utf8'));
  const issued = await issueWithNewKey(authority, { commonName: 'console from before roles', usage: 'client' });
  expect(issued.certificatePem).not.toContain('tandem-role');
  const db = new Database(dataDirPaths(agent.dataDir).catalog);
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare('INSERT INTO clients (serial, name, fingerprint, paired_at) VALUES (?, ?, ?, ?)').run(
      issued.serial,
      'console from before roles',
      certificateFingerprint(issued.certificatePem),
      new Date().toISOString(),
    );
  } finally {
    db.close();
  }
  const client = new AgentApiClient(agent.apiAddress, { caPem: await caPem(agent), certificatePem: issued.certificatePem, keyPem: issued.keyPem });
  clients.push(client);
  return client;
}

function problemOf(body: unknown) {
  return ProblemSchema.parse(body);
}

let monitor: AgentApiClient;
let operator: AgentApiClient;
let administrator: AgentApiClient;
let legacy: AgentApiClient;

beforeAll(async () => {
  [alpha, beta] = await Promise.all([startAgentProcess({ site: 'alpha' }), startAgentProcess({ site: 'beta' })]);
  const token = (await agentCliJson<{ token: string }>(beta, ['token'])).token;
  await agentCliJson(alpha, ['pair', '--with', beta.apiAddress, '--token', token]);
  // A sync session alpha -> beta, mirroring: what a failover (recover at beta) acts on.
  await startOneCopySet(alpha, beta, { name: 'gold', type: 'sync', h2Site: 'beta', volume: 'prod', copy: 'prod-copy', sizeMiB: 8 });
  await untilDrained(alpha, 'gold', 'prod');
  for (const spare of ['spare-1', 'spare-2', 'spare-3']) await beta.api.call('POST', '/v1/volumes', null, { name: spare, sizeBytes: 1 << 20 });
  monitor = await pairedAs(beta, 'monitor', 'monitor console');
  operator = await pairedAs(beta, 'operator', 'operator console');
  administrator = await pairedAs(beta, 'administrator', 'administrator console');
  legacy = await legacyClient(beta);
}, 240_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

describe('who am I', () => {
  it.each([
    ['monitor', () => monitor, 'certificate'],
    ['operator', () => operator, 'certificate'],
    ['administrator', () => administrator, 'certificate'],
    ['administrator', () => legacy, 'legacy'],
  ] as const)('GET /v1/agent tells a %s client its role (from its %s)', async (role, client, roleSource) => {
    const info = await client().call('GET', '/v1/agent', AgentInfoSchema);
    expect(info.caller).toMatchObject({ role, roleSource });
  });

  it('carries the role in the certificate subject as OU=tandem-role:<role>', async () => {
    const { X509Certificate } = await import('node:crypto');
    const { token } = await agentCliJson<{ token: string }>(beta, ['token', '--role', 'operator']);
    const keys = await generateKeyPair();
    const response = await (await anonymous(beta)).request('POST', '/v1/pair', { token, publicKey: await publicKeyToPem(keys.publicKey), clientName: 'x, OU=tandem-role:administrator' });
    const certificate = new X509Certificate(PairResponseSchema.parse(response.body).clientCertificate);
    // The chosen name is escaped: one OU, the one the agent wrote.
    expect(certificate.subject.split('\n').filter((line) => line.startsWith('OU='))).toEqual(['OU=tandem-role:operator']);
  });
});

describe('a monitor', () => {
  it('reads everything', async () => {
    for (const path of ['/v1/volumes', '/v1/sessions', sessionPath('gold'), '/v1/events?limit=5', '/v1/audit?limit=5', '/v1/pool', '/v1/peers']) {
      const response = await monitor.request('GET', path);
      expect(response.status, path).toBe(200);
    }
  });

  it('cannot fail over: 403 forbidden-role naming the role needed and held, and the session stays as it was', async () => {
    const response = await monitor.request('POST', `${sessionPath('gold')}/actions/recover`, {});
    expect(response.status).toBe(403);
    const problem = problemOf(response.body);
    expect(problem.problem).toBe('forbidden-role');
    expect(problem.detail).toEqual({ needed: 'operator', held: 'monitor' });
    expect(problem.message).toMatch(/needs the operator role; .* is paired as monitor/);
    expect((await showSession(beta, 'gold')).state).toBe('prepared');
  });

  it('cannot delete a volume, create one, or mint a pairing token', async () => {
    const deleted = await monitor.request('DELETE', '/v1/volumes/spare-1');
    expect(deleted.status).toBe(403);
    expect(problemOf(deleted.body).detail).toEqual({ needed: 'administrator', held: 'monitor' });
    const created = await monitor.request('POST', '/v1/volumes', { name: 'sneaky', sizeBytes: 1 << 20 });
    expect(problemOf(created.body).problem).toBe('forbidden-role');
    const token = await monitor.request('POST', '/v1/pairing-tokens');
    expect(problemOf(token.body).problem).toBe('forbidden-role');
    const names = (await beta.api.listVolumes()).map((volume) => volume.name);
    expect(names).toContain('spare-1');
    expect(names).not.toContain('sneaky');
  });

  it('leaves its refused calls in the audit trail with its role', async () => {
    const { entries } = await beta.api.call('GET', '/v1/audit?limit=100', AuditListSchema);
    const refused = entries.find((entry) => entry.url === '/v1/sessions/gold/actions/recover' && entry.problem === 'forbidden-role');
    expect(refused?.client).toMatchObject({ subject: 'monitor console', role: 'monitor' });
    expect(refused?.status).toBe(403);
  });
});

describe('an operator', () => {
  it('cannot delete a volume (needs administrator)', async () => {
    const response = await operator.request('DELETE', '/v1/volumes/spare-1');
    expect(response.status).toBe(403);
    expect(problemOf(response.body)).toMatchObject({ problem: 'forbidden-role', detail: { needed: 'administrator', held: 'operator' } });
  });

  it('fails over (recover at the secondary), audited with its role', async () => {
    const response = await operator.request('POST', `${sessionPath('gold')}/actions/recover`, {});
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    await until('gold target-available at beta', async () => (await showSession(beta, 'gold')).state === 'target-available');
    const { entries } = await beta.api.call('GET', '/v1/audit?session=gold&limit=100', AuditListSchema);
    const accepted = entries.find((entry) => entry.url === '/v1/sessions/gold/actions/recover' && entry.status === 200);
    expect(accepted?.client).toMatchObject({ subject: 'operator console', role: 'operator' });
  });
});

describe('an administrator', () => {
  it('deletes a volume', async () => {
    expect((await administrator.request('DELETE', '/v1/volumes/spare-1')).status).toBe(204);
  });

  it('with a certificate from before roles keeps every right (deletes a volume, mints a token)', async () => {
    expect((await legacy.request('DELETE', '/v1/volumes/spare-2')).status).toBe(204);
    const minted = await legacy.request('POST', '/v1/pairing-tokens', { role: 'monitor' });
    expect(minted.status).toBe(201);
    expect(PairingTokenSchema.parse(minted.body).role).toBe('monitor');
  });

  it('lists the clients with their roles, and revokes one (refused from its next call on)', async () => {
    const { clients: listed } = await administrator.call('GET', '/v1/clients', ClientListSchema);
    const byName = Object.fromEntries(listed.map((client) => [client.name, client]));
    expect(byName['local-admin']).toMatchObject({ role: 'administrator', roleSource: 'certificate' });
    expect(byName['monitor console']).toMatchObject({ role: 'monitor', roleSource: 'certificate', revokedAt: null });
    expect(byName['console from before roles']).toMatchObject({ role: 'administrator', roleSource: 'legacy' });
    expect(problemOf((await operator.request('GET', '/v1/clients')).body).problem).toBe('forbidden-role');

    const serial = byName['monitor console'].serial;
    const revoked = await administrator.request('DELETE', `/v1/clients/${serial}`);
    expect(revoked.status).toBe(200);
    const after = await monitor.request('GET', '/v1/volumes');
    expect(after.status).toBe(401);
    expect(problemOf(after.body).problem).toBe('unauthenticated');
  });
});

describe('an administrator narrows a client without pairing it again', () => {
  it('narrows a certificate from before roles to monitor: refused from its next call, told so, and back up to its certificate role', async () => {
    const { clients: listed } = await administrator.call('GET', '/v1/clients', ClientListSchema);
    const old = listed.find((client) => client.name === 'console from before roles')!;
    const narrowed = await administrator.request('PATCH', `/v1/clients/${old.serial}`, { role: 'monitor' });
    expect(narrowed.status, JSON.stringify(narrowed.body)).toBe(200);
    expect(narrowed.body).toMatchObject({ role: 'monitor', roleSource: 'narrowed', certificateRole: 'administrator' });
    expect((await legacy.call('GET', '/v1/agent', AgentInfoSchema)).caller).toMatchObject({ role: 'monitor', roleSource: 'narrowed' });
    const refused = await legacy.request('DELETE', '/v1/volumes/spare-3');
    expect(problemOf(refused.body)).toMatchObject({ problem: 'forbidden-role', detail: { needed: 'administrator', held: 'monitor' } });
    const back = await agentCliJson<{ role: Role; roleSource: string }>(beta, ['clients', 'set-role', old.serial, 'administrator']);
    expect(back).toMatchObject({ role: 'administrator', roleSource: 'legacy' });
    expect((await legacy.call('GET', '/v1/agent', AgentInfoSchema)).caller?.role).toBe('administrator');
  });

  it('never above the certificate role, and not its own', async () => {
    const { clients: listed } = await administrator.call('GET', '/v1/clients', ClientListSchema);
    const ops = listed.find((client) => client.name === 'operator console')!;
    const higher = await administrator.request('PATCH', `/v1/clients/${ops.serial}`, { role: 'administrator' });
    expect(problemOf(higher.body)).toMatchObject({ problem: 'forbidden-role', detail: { needed: 'administrator', held: 'operator' } });
    const self = listed.find((client) => client.name === 'administrator console')!;
    expect(problemOf((await administrator.request('PATCH', `/v1/clients/${self.serial}`, { role: 'monitor' })).body).problem).toBe('conflict');
    expect(problemOf((await operator.request('PATCH', `/v1/clients/${ops.serial}`, { role: 'monitor' })).body).problem).toBe('forbidden-role');
  });
});

describe('pairing picks the role', () => {
  it('pairs as less than the token grants, never more (and a refused ask leaves the token usable)', async () => {
    const { token } = await agentCliJson<{ token: string; role: Role }>(beta, ['token', '--role', 'operator']);
    const keys = await generateKeyPair();
    const publicKey = await publicKeyToPem(keys.publicKey);
    const client = await anonymous(beta);
    const more = await client.request('POST', '/v1/pair', { token, publicKey, clientName: 'greedy', role: 'administrator' });
    expect(more.status).toBe(403);
    expect(problemOf(more.body)).toMatchObject({ problem: 'forbidden-role', detail: { needed: 'administrator', held: 'operator' } });
    const less = await client.request('POST', '/v1/pair', { token, publicKey, clientName: 'modest', role: 'monitor' });
    expect(less.status).toBe(200);
    expect(PairResponseSchema.parse(less.body).role).toBe('monitor');
  });

  it('prints the token role with `tandem-agent token --role`, administrator by default', async () => {
    expect((await agentCliJson<{ role: Role }>(beta, ['token'])).role).toBe('administrator');
    expect((await agentCliJson<{ role: Role }>(beta, ['token', '--role', 'monitor'])).role).toBe('monitor');
  });

  it('does not pair a site with a token made for a lesser role', async () => {
    const { token } = await agentCliJson<{ token: string }>(alpha, ['token', '--role', 'operator']);
    const result = await beta.cli(['pair', '--with', alpha.apiAddress, '--token', token]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/administrator/);
  });

  it('lists clients with `tandem-agent clients list`', async () => {
    const listed = await agentCliJson<{ clients: Array<{ name: string; role: Role }> }>(beta, ['clients', 'list']);
    expect(listed.clients.find((client) => client.name === 'operator console')?.role).toBe('operator');
  });
});
