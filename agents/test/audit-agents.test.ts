import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditListSchema, auditCsvColumns, auditRedacted, type AuditEntry, type AuditList } from '@tandem/contract';
import { AgentApiClient } from '../src/cli/api-client.ts';
import { dataDirPaths } from '../src/data-dir.ts';
import { tlsPaths } from '../src/tls/files.ts';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { agentCliJson } from './helpers/run-command.ts';

/**
 * The audit trail with real agent processes: every state-changing call
 * (CLI or API, accepted, refused, unauthenticated) leaves one row naming the
 * client certificate, the declared user, the parameters with secrets
 * redacted and the result; rows survive a restart; `GET /v1/audit` (JSON,
 * CSV), `tandem-agent audit list|export` read them; the retention bound holds.
 */

let alpha: AgentProcess;
let beta: AgentProcess;
/** The pairing token alpha used to pair with beta: it must appear nowhere in either catalog. */
let pairingToken: string;

beforeAll(async () => {
  [alpha, beta] = await Promise.all([startAgentProcess({ site: 'alpha' }), startAgentProcess({ site: 'beta' })]);
  pairingToken = (await agentCliJson<{ token: string }>(beta, ['token'])).token;
  await agentCliJson(alpha, ['pair', '--with', beta.apiAddress, '--token', pairingToken]);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

function audit(agent: AgentProcess, query = ''): Promise<AuditList> {
  return agent.api.call('GET', `/v1/audit${query}`, AuditListSchema);
}

/** The entries of `agent` after id `after` matching `match`, waiting (with a deadline) until there are `count`. */
async function entriesAfter(agent: AgentProcess, after: number, match: (entry: AuditEntry) => boolean, count = 1): Promise<AuditEntry[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = (await audit(agent, '?limit=10000')).entries.filter((entry) => entry.id > after && match(entry));
    if (found.length >= count || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function lastId(agent: AgentProcess): Promise<number> {
  return (await audit(agent, '?limit=1')).entries.at(-1)?.id ?? 0;
}

async function adminFingerprint(agent: AgentProcess): Promise<string> {
  return new X509Certificate(await readFile(tlsPaths(agent.dataDir).adminCertificate, 'utf8')).fingerprint256;
}

/** A client that presents no certificate (trusting the agent's CA). */
async function anonymous(agent: AgentProcess): Promise<AgentApiClient> {
  return new AgentApiClient(agent.apiAddress, { caPem: await readFile(tlsPaths(agent.dataDir).caCertificate, 'utf8') });
}

/** Every byte of the agent's catalog (the database and its write-ahead log). */
async function catalogBytes(agent: AgentProcess): Promise<string> {
  const file = dataDirPaths(agent.dataDir).catalog;
  const parts = await Promise.all([file, `${file}-wal`].map((name) => readFile(name).catch(() => Buffer.alloc(0))));
  return Buffer.concat(parts).toString('latin1');
}

describe('audit trail at the agent', () => {
  it('records a CLI volume create with the admin certificate, the OS user, the parameters and the result', async () => {
    const after = await lastId(alpha);
    const result = await alpha.cli(['volume', 'create', 'audit-vol', '16M']);
    expect(result.code, result.stderr).toBe(0);
    const rows = await entriesAfter(alpha, after, (entry) => entry.method === 'POST' && entry.route === '/v1/volumes');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      client: { subject: 'local-admin alpha', fingerprint: await adminFingerprint(alpha) },
      user: os.userInfo().username,
      url: '/v1/volumes',
      target: 'volume audit-vol',
      session: null,
      params: { body: { name: 'audit-vol', sizeBytes: 16 * 1024 * 1024 } },
      status: 201,
      problem: null,
      message: null,
    });
    expect(Date.parse(rows[0].time)).toBeGreaterThan(Date.now() - 60_000);
    expect(rows[0].durationMs).toBeGreaterThanOrEqual(0);
    // GET calls are not state-changing: the audit read itself and the CLI's reads leave no row.
    expect((await audit(alpha)).entries.every((entry) => entry.method !== 'GET')).toBe(true);
  });

  it('records a session create with the declared console user and names the session', async () => {
    const after = await lastId(alpha);
    alpha.api.user = 'alice';
    try {
      await alpha.api.call('POST', '/v1/sessions', null, { name: 'gold', type: 'sync', peer: 'beta' });
    } finally {
      alpha.api.user = os.userInfo().username;
    }
    const rows = await entriesAfter(alpha, after, (entry) => entry.route === '/v1/sessions');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      client: { subject: 'local-admin alpha' },
      user: 'alice',
      target: 'session gold',
      session: 'gold',
      params: { body: { name: 'gold', type: 'sync', peer: 'beta' } },
      status: 201,
      problem: null,
    });
    // The session filter finds it and leaves the volume out.
    const gold = await audit(alpha, '?session=gold');
    expect(gold.entries.map((entry) => entry.id)).toEqual([rows[0].id]);
  });

  it('records refused calls with their problem code: bad input, an unknown volume, no certificate', async () => {
    const after = await lastId(alpha);
    await expect(alpha.api.call('POST', '/v1/volumes', null, { name: 'bad-size', sizeBytes: 1000 })).rejects.toMatchObject({ problem: 'invalid-size' });
    await expect(alpha.api.call('DELETE', '/v1/volumes/no-such-volume', null)).rejects.toMatchObject({ problem: 'not-found' });
    await alpha.api.call('POST', '/v1/sessions/gold/actions/terminate', null, {});
    const stranger = await anonymous(alpha);
    try {
      await expect(stranger.call('DELETE', '/v1/volumes/audit-vol', null)).rejects.toMatchObject({ problem: 'unauthenticated' });
    } finally {
      stranger.close();
    }
    const rows = await entriesAfter(alpha, after, () => true, 4);
    expect(rows.map((entry) => [entry.method, entry.route, entry.status, entry.problem])).toEqual([
      ['POST', '/v1/volumes', 400, 'invalid-size'],
      ['DELETE', '/v1/volumes/:name', 404, 'not-found'],
      ['POST', '/v1/sessions/:name/actions/:action', 200, null],
      ['DELETE', '/v1/volumes/:name', 401, 'unauthenticated'],
    ]);
    expect(rows[0]).toMatchObject({ client: { subject: 'local-admin alpha' }, params: { body: { name: 'bad-size', sizeBytes: 1000 } } });
    expect(rows[0].message).toMatch(/sizeBytes/);
    expect(rows[1]).toMatchObject({ target: 'volume no-such-volume', params: { path: { name: 'no-such-volume' } } });
    expect(rows[2]).toMatchObject({ session: 'gold', params: { path: { name: 'gold', action: 'terminate' } } });
    // No certificate: nobody to name, and the volume is still there.
    expect(rows[3]).toMatchObject({ client: null, target: 'volume audit-vol' });
    expect((await alpha.api.getVolume('audit-vol')).name).toBe('audit-vol');
  });

  it('never keeps a secret: pairing tokens and keys are redacted in the rows and absent from the catalog file', async () => {
    // alpha's `pair` (POST /v1/peers) and beta's side of it (POST /v1/peers/accept) both carried the token.
    const peers = (await audit(alpha)).entries.filter((entry) => entry.route === '/v1/peers');
    expect(peers).toHaveLength(1);
    expect(peers[0]).toMatchObject({ status: 201, params: { body: { token: auditRedacted, apiAddress: beta.apiAddress } } });
    const accepted = (await audit(beta)).entries.filter((entry) => entry.route === '/v1/peers/accept');
    expect(accepted).toHaveLength(1);
    expect(accepted[0]).toMatchObject({ status: 200, params: { body: { token: auditRedacted, site: 'alpha' } } });
    // A pairing attempt with a wrong token and a public key: refused, recorded, redacted.
    const stranger = await anonymous(beta);
    const wrongToken = 'tdm_thisIsNotAValidTokenButASecretAnyway';
    try {
      await expect(
        stranger.call('POST', '/v1/pair', null, { token: wrongToken, publicKey: '-----BEGIN PUBLIC KEY-----\nSECRETISH\n-----END PUBLIC KEY-----\n', clientName: 'mallory' }),
      ).rejects.toMatchObject({ problem: 'token-invalid' });
    } finally {
      stranger.close();
    }
    const pair = await entriesAfter(beta, accepted[0].id, (entry) => entry.route === '/v1/pair');
    expect(pair).toHaveLength(1);
    expect(pair[0]).toMatchObject({ client: null, target: 'client mallory', status: 403, problem: 'token-invalid', params: { body: { token: auditRedacted, publicKey: auditRedacted, clientName: 'mallory' } } });
    for (const [agent, secret] of [[alpha, pairingToken], [beta, pairingToken], [beta, wrongToken], [beta, 'SECRETISH']] as const) {
      expect((await catalogBytes(agent)).includes(secret), `${secret} in ${agent.dataDir}`).toBe(false);
    }
  });

  it('reads the trail as CSV from the API and the CLI, filters by session and since, and refuses bad input with bad-request', async () => {
    const csv = await alpha.api.request('GET', '/v1/audit?format=csv&session=gold');
    expect(csv.status).toBe(200);
    const lines = String(csv.body).trimEnd().split('\r\n');
    expect(lines[0]).toBe(auditCsvColumns.join(','));
    expect(lines).toHaveLength(3); // header, create, terminate
    expect(lines[1]).toContain(',alpha,local-admin alpha,');
    expect(lines[1]).toContain('"{""body"":{""name"":""gold"",""type"":""sync"",""peer"":""beta""}}"');

    const cli = await alpha.cli(['audit', 'list', '--csv', '--session', 'gold']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toBe(String(csv.body));

    const table = await alpha.cli(['audit', 'list']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/POST \/v1\/volumes\s+volume audit-vol\s+201/);
    expect(table.stdout).toMatch(/DELETE \/v1\/volumes\/:name\s+volume audit-vol\s+401 unauthenticated/);

    const json = await agentCliJson<AuditList>(alpha, ['audit', 'list', '--limit', '2']);
    expect(json.entries).toHaveLength(2);
    expect(json.truncated).toBe(true);
    const all = await audit(alpha);
    expect(json.entries.map((entry) => entry.id)).toEqual(all.entries.slice(-2).map((entry) => entry.id));

    const future = await audit(alpha, `?since=${new Date(Date.now() + 3_600_000).toISOString()}`);
    expect(future.entries).toEqual([]);
    const recent = await agentCliJson<AuditList>(alpha, ['audit', 'list', '--since', '1h']);
    expect(recent.entries.length).toBe(all.entries.length);

    const exportFile = path.join(path.dirname(alpha.dataDir), 'audit.csv');
    const exported = await alpha.cli(['audit', 'export', exportFile, '--session', 'gold']);
    expect(exported.code, exported.stderr).toBe(0);
    expect(await readFile(exportFile, 'utf8')).toBe(String(csv.body));

    for (const [query, field] of [['?since=yesterday', 'since'], ['?limit=-1', 'limit'], ['?limit=0', 'limit'], ['?format=xml', 'format']]) {
      const refused = await alpha.api.request('GET', `/v1/audit${query}`);
      expect(refused.status, query).toBe(400);
      expect(refused.body, query).toMatchObject({ problem: 'bad-request', message: expect.stringContaining(`querystring.${field}`) });
    }
    const badSince = await alpha.cli(['audit', 'list', '--since', 'yesterday']);
    expect(badSince.code).toBe(2);
    expect(badSince.stderr).toMatch(/^error: bad-request: .*yesterday/);
    const badLimit = await alpha.cli(['audit', 'list', '--limit', '-3']);
    expect(badLimit.code).toBe(2);
    expect(badLimit.stderr).toMatch(/bad-request/);
  });

  it('keeps the rows across a restart', async () => {
    const before = await audit(alpha);
    await alpha.restart();
    const after = await audit(alpha);
    expect(after.entries.slice(0, before.entries.length)).toEqual(before.entries);
  });

  it('keeps an answered call across a kill -9 of the agent right after it', async () => {
    await alpha.api.createVolume('before-kill', 4 * 1024 * 1024);
    await alpha.kill('SIGKILL');
    await alpha.restart();
    const rows = (await audit(alpha)).entries.filter((entry) => entry.target === 'volume before-kill');
    expect(rows.map((entry) => [entry.method, entry.status])).toEqual([['POST', 201]]);
  });

  it('holds the retention bound: only the newest --audit-keep-rows (TANDEM_AUDIT_KEEP_ROWS) entries stay', async () => {
    const small = await startAgentProcess({ site: 'gamma', env: { TANDEM_AUDIT_KEEP_ROWS: '3' } });
    try {
      for (const name of ['r1', 'r2', 'r3', 'r4', 'r5']) await small.api.createVolume(name, 4 * 1024 * 1024);
      const list = await small.api.call('GET', '/v1/audit', AuditListSchema);
      expect(list.retention.maxRows).toBe(3);
      expect(list.entries.map((entry) => entry.target)).toEqual(['volume r3', 'volume r4', 'volume r5']);
      // The bound holds in the catalog itself, also for rows written before a restart with a smaller bound.
      await small.restart({ env: { TANDEM_AUDIT_KEEP_ROWS: '2' } });
      const restarted = await small.api.call('GET', '/v1/audit', AuditListSchema);
      expect(restarted.entries.map((entry) => entry.target)).toEqual(['volume r4', 'volume r5']);
    } finally {
      await small.stop();
    }
  });
});
