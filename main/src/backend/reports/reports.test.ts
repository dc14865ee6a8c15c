import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Papa from 'papaparse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditAction, AuditListSchema, auditResult, auditWho, JournalPointSchema, SessionHistorySchema, SessionInfoSchema, type AgentEvent, type HistoryPoint, type SessionHistory } from '@tandem/contract';
import { agentCli, initAgent, pairingToken, startAgent, type RunningAgent } from '../../../../scripts/lib/agents.mjs';
import { ReportDocumentSchema, ReportFileSchema, type ReportDocument } from '../../shared/sessions-api.ts';
import { startBackend, type RunningBackend } from '../backend.ts';
import { pdfLines } from './pdf-text.test-helpers.ts';
import { renderReport } from './report-formats.ts';

const mib = 1024 * 1024;
const execFileAsync = promisify(execFile);
const qemuIo = (uri: string, command: string) => execFileAsync('qemu-io', ['-f', 'raw', '-c', command, uri]);

/** Both agents sample their sessions every 200 ms (they inherit the test's environment). */
process.env.TANDEM_HISTORY_INTERVAL_MS = '200';

type Row = Record<string, string>;

/**
 * Complete session and cluster reports against two real agents through the
 * backend: both sites' events, each site's exposure history, copy sets by
 * volume names and sites with their last verify, the flash copies of the
 * session's volumes (and none of other volumes), the cluster's master data
 * set history; the same content in the JSON, the CSV and the PDF (parsed
 * with pdf.js); a site the backend cannot reach named as unreachable with
 * the time, never left out silently.
 */
describe('session and cluster reports with two real agents', { timeout: 180_000 }, () => {
  let dir: string;
  let primary: RunningAgent;
  let secondary: RunningAgent;
  let backend: RunningBackend;
  const ids = { primary: '', secondary: '' };
  const site = (which: keyof typeof ids) => `/api/sites/${ids[which]}`;

  const call = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${backend.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${backend.token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
  };
  const ok = async (method: string, route: string, body?: unknown, status = 200) => {
    const answer = await call(method, route, body);
    expect(answer.status, `${method} ${route}: ${JSON.stringify(answer.body)}`).toBe(status);
    return answer.body;
  };
  const waitFor = async <T>(probe: () => Promise<T | false | null | undefined>, what: string, timeoutMs = 90_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe().catch(() => null);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  };
  const sessionAt = async (which: keyof typeof ids) => SessionInfoSchema.parse(await ok('GET', `${site(which)}/sessions/orders`));
  /**
   * A report as the backend builds it from the agents (the JSON route), and
   * the same document rendered as CSV and PDF: each format of one build, to
   * compare (a second build would hold newer samples and events). The CSV
   * and PDF routes are checked to answer files of their kind.
   */
  const fetchReport = async (route: string) => {
    const json = ReportFileSchema.parse(await ok('GET', `${route}?format=json`));
    expect(json).toMatchObject({ mimeType: 'application/json', encoding: 'utf8' });
    const document = ReportDocumentSchema.parse(JSON.parse(json.content));
    const [csv, pdf] = await Promise.all([renderReport(document, 'csv'), renderReport(document, 'pdf')]);
    const parsed = Papa.parse<Row>(csv.content, { header: true, skipEmptyLines: true });
    expect(parsed.errors).toEqual([]);
    const lines = await pdfLines(Buffer.from(pdf.content, 'base64'));
    const [csvRoute, pdfRoute] = await Promise.all(['csv', 'pdf'].map(async (format) => ReportFileSchema.parse(await ok('GET', `${route}?format=${format}`))));
    expect(csvRoute).toMatchObject({ mimeType: 'text/csv', encoding: 'utf8' });
    expect(Papa.parse<Row>(csvRoute.content, { header: true, skipEmptyLines: true }).errors).toEqual([]);
    expect(pdfRoute).toMatchObject({ mimeType: 'application/pdf', encoding: 'base64' });
    expect((await pdfLines(Buffer.from(pdfRoute.content, 'base64')))[0]).toBe(`Tandem - ${document.title}`);
    return { document, rows: parsed.data, text: lines.join('\n') };
  };
  const rowsOf = (rows: Row[], record: string) => rows.filter((row) => row.record === record);
  const cell = (value: string | number | boolean | null | undefined) => (value === null || value === undefined ? '' : String(value));

  /** Points alike but for exposure, in a row, as one stretch (an independent reading of what the PDF table must show). */
  const stretchesOf = (history: SessionHistory) => {
    const stretches: Array<{ first: HistoryPoint; last: HistoryPoint; points: number }> = [];
    const key = (point: HistoryPoint) => JSON.stringify([point.state, point.health, point.outOfSyncTracks, point.outOfSyncBytes, point.peers, point.detail]);
    for (const point of history.points) {
      const last = stretches.at(-1);
      const gapBetween = last && history.gaps.some((gap) => gap.from >= last.last.time && gap.to <= point.time);
      if (last && !gapBetween && key(last.last) === key(point)) {
        last.last = point;
        last.points++;
      } else stretches.push({ first: point, last: point, points: 1 });
    }
    return stretches;
  };

  /** What every format must hold of a session report, checked in the JSON, the CSV rows and the PDF text alike. */
  const expectSameContent = ({ document, rows, text }: Awaited<ReturnType<typeof fetchReport>>) => {
    // Sites, reached or not.
    expect(rowsOf(rows, 'site').map((row) => [row.site, row.reachable, row.unreachable_since, row.problem])).toEqual(
      document.sites.map((each) => [each.site, String(each.reachable), cell(each.unreachableSince), cell(each.problem)]),
    );
    for (const each of document.sites) {
      expect(text).toContain(each.reachable ? `${each.site} reached at ${each.checkedAt}` : `${each.site} UNREACHABLE since ${each.unreachableSince} (checked ${each.checkedAt}): ${each.problem}`);
    }
    for (const report of document.sessions) {
      const name = report.session.name;
      const mine = (record: string) => rowsOf(rows, record).filter((row) => row.session === name);
      expect(mine('session')).toEqual([expect.objectContaining({ site: report.site, state: report.session.state, health: report.session.health, observed_at: report.session.observedAt })]);
      // Copy sets by name, with their last verify.
      expect(mine('copy-set').map((row) => [row.copy_set, row.h1_site, row.h1_volume, row.h2_site, row.h2_volume, row.pair_state, row.out_of_sync_tracks, row.last_verify_at, row.last_verify_compared, row.last_verify_differing])).toEqual(
        report.copySets.map((set) => [set.name, set.h1Site, set.h1Volume, set.h2Site, set.h2Volume, set.state, String(set.outOfSyncTracks), cell(set.lastVerify?.finishedAt), cell(set.lastVerify?.comparedTracks), cell(set.lastVerify?.differingTracks)]),
      );
      for (const set of report.copySets) {
        expect(text).toContain(set.name);
        if (set.lastVerify) expect(text).toContain(`${set.lastVerify.comparedTracks} compared, ${set.lastVerify.differingTracks} differing, ${set.lastVerify.unverifiedTracks} unverified at ${set.lastVerify.finishedAt}`);
      }
      // Events of every reached site.
      expect(mine('event').map((row) => [row.site, row.time, row.event_type, row.severity, row.message])).toEqual(report.events.map((event) => [event.site, event.time, event.type, event.severity, event.message]));
      for (const event of report.events) expect(text).toContain(`${event.time} ${event.site} ${event.type} ${event.severity}`);
      // Exposure history: every point in the CSV; in the PDF every site's count and each stretch of alike points with its first and last time.
      expect(mine('history').map((row) => [row.site, row.time, row.state, row.health, row.exposure_seconds, row.out_of_sync_tracks, row.samples])).toEqual(
        report.history.flatMap((history) => history.points.map((point) => [history.site, point.time, point.state, point.health, cell(point.exposureSeconds), String(point.outOfSyncTracks), String(point.samples)])),
      );
      expect(mine('gap').map((row) => [row.site, row.time, row.until])).toEqual(report.history.flatMap((history) => history.gaps.map((gap) => [history.site, gap.from, gap.to])));
      for (const history of report.history) {
        expect(text).toMatch(new RegExp(`As sampled at ${history.site} \\(every [\\d.]+ s[^)]*\\): ${history.points.length} points`));
        for (const stretch of stretchesOf(history)) expect(text).toContain(`${stretch.first.time} ${stretch.last.time} ${stretch.points} /`);
        for (const gap of history.gaps) expect(text).toContain(`${gap.from} ${gap.to} 0 no samples`);
      }
      // Flash copies of the session's volumes.
      expect(mine('flash').map((row) => [row.site, row.flash_session, row.source, row.target])).toEqual(
        report.flashSessions.flatMap((flash) => flash.pairs.map((pair) => [flash.site, flash.name, pair.source, pair.target])),
      );
      for (const flash of report.flashSessions) for (const pair of flash.pairs) expect(text).toContain(`${pair.source} -> ${pair.target}`);
      // The audit trail of the session at every reached site.
      expect(mine('audit').map((row) => [row.site, row.time, row.who, row.action, row.target, row.parameters, row.result, row.problem])).toEqual(
        report.audit.map((entry) => [entry.site, entry.time, auditWho(entry), auditAction(entry), cell(entry.target), entry.params === null ? '' : JSON.stringify(entry.params), auditResult(entry), cell(entry.problem)]),
      );
      for (const entry of report.audit) expect(text).toContain(`${entry.time} ${entry.site}`);
      // The journal at the receiving site and its bookmarks (or its state unknown, with why).
      const { protection } = report;
      const journal = protection?.journal ?? null;
      expect(mine('protection').map((row) => [row.site, row.reachable, row.problem, row.journal_budget_bytes, row.journal_used_bytes, row.required_window_seconds, row.covered_window_seconds, row.point_count, row.bookmark_count])).toEqual(
        protection
          ? [[protection.site, String(journal !== null), cell(protection.problem), cell(journal?.policy.budgetBytes), cell(journal?.status.usedBytes), cell(journal?.policy.requiredWindowSeconds), cell(journal?.status.coveredWindowSeconds), cell(journal?.status.pointCount), cell(journal?.status.bookmarkCount)]]
          : [],
      );
      expect(mine('bookmark').map((row) => [row.site, row.bookmark, row.time, row.sequence])).toEqual(protection?.bookmarks.map((bookmark) => [protection.site, bookmark.name, bookmark.time, String(bookmark.seq)]) ?? []);
      if (protection) expect(text).toContain(`Protection (CDP journal at ${protection.site})`);
      else expect(text).not.toContain('Protection (CDP journal');
      if (protection && !journal) expect(text).toContain(`Journal state unknown: ${protection.problem}`);
      for (const bookmark of protection?.bookmarks ?? []) expect(text).toContain(`${bookmark.name} ${bookmark.time} ${bookmark.seq}`);
      for (const warning of journal?.status.warnings ?? []) expect(text).toContain(`${warning.level.toUpperCase()} ${warning.code}:`);
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-reports-'));
    await initAgent({ dataDir: path.join(dir, 'primary'), site: 'primary' });
    await initAgent({ dataDir: path.join(dir, 'secondary'), site: 'secondary' });
    [primary, secondary] = await Promise.all([startAgent({ dataDir: path.join(dir, 'primary') }), startAgent({ dataDir: path.join(dir, 'secondary') })]);
    backend = await startBackend({ configDir: path.join(dir, 'console'), rendererDir: path.join(dir, 'none'), backoff: { initialMs: 100, maxMs: 500, factor: 2 } });
    for (const [which, agent] of [
      ['primary', primary],
      ['secondary', secondary],
    ] as const) {
      const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
      ids[which] = String((await ok('POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint }, 201)).id);
    }
    await waitFor(async () => backend.sites.list().every((each) => each.connection.state === 'connected'), 'both sites connected');
    await ok('POST', `${site('primary')}/peers`, { otherSiteId: ids.secondary }, 201);
    for (const [which, name] of [
      ['primary', 'db'],
      ['primary', 'db-pit'],
      ['primary', 'misc'],
      ['primary', 'misc-pit'],
      ['secondary', 'db-copy'],
    ] as const) {
      await ok('POST', `${site(which)}/volumes`, { name, sizeBytes: 16 * mib }, 201);
    }
    await qemuIo(`nbd://${primary.nbdAddress}/db`, 'write -P 0x41 0 1M');
    await ok('POST', `${site('primary')}/sessions`, { name: 'orders', type: 'sync', peer: 'secondary' }, 201);
    await ok('POST', `${site('primary')}/sessions/orders/pairs`, { h1Volume: 'db', h2Volume: 'db-copy' }, 201);
    await ok('POST', `${site('primary')}/sessions/orders/actions/start`);
    await waitFor(async () => (await sessionAt('primary')).state === 'prepared', 'orders prepared');
    // A suspension with writes, then the resync: something to see in the history.
    await ok('POST', `${site('primary')}/sessions/orders/actions/suspend`);
    await qemuIo(`nbd://${primary.nbdAddress}/db`, 'write -P 0x42 0 192k');
    await waitFor(async () => (await sessionAt('primary')).pairs[0].outOfSyncTracks === 3, 'three tracks marked');
    // Suspended until a sample shows the marked tracks (a state change is sampled as it happens, its counts at the next interval).
    await waitFor(async () => {
      const history = SessionHistorySchema.parse(await ok('GET', `${site('primary')}/sessions/orders/history?maxPoints=10000`));
      return history.points.some((point) => point.state === 'suspended' && point.outOfSyncTracks === 3);
    }, 'the marked tracks sampled during the suspension');
    await ok('POST', `${site('primary')}/sessions/orders/actions/resume`);
    await waitFor(async () => (await sessionAt('primary')).state === 'prepared', 'orders prepared again');
    await ok('POST', `${site('primary')}/sessions/orders/verify`);
    // Flash copies: one of the session's volume, one of another volume.
    await agentCli(['flash', 'establish', '--name', 'nightly', '--pair', 'db:db-pit', '--no-copy', '--data', primary.dataDir, '--json']);
    await agentCli(['flash', 'establish', '--name', 'unrelated', '--pair', 'misc:misc-pit', '--no-copy', '--data', primary.dataDir, '--json']);
    await agentCli(['cluster', 'create', 'payments', '--interval', '0.2', '--data', primary.dataDir, '--json']);
    await agentCli(['cluster', 'add', 'payments', 'orders', '--data', primary.dataDir, '--json']);
    // Both sites have sampled the suspension and the resync.
    for (const which of ['primary', 'secondary'] as const) {
      await waitFor(async () => {
        const history = SessionHistorySchema.parse(await ok('GET', `${site(which)}/sessions/orders/history?maxPoints=10000`));
        return history.points.some((point) => point.state === 'suspended') && history.points.at(-1)?.state === 'prepared';
      }, `the suspension in the history at ${which}`);
    }
  }, 240_000);

  afterAll(async () => {
    await backend?.close();
    await Promise.allSettled([primary?.stop(), secondary?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves a session history from an agent through the backend and refuses bad ranges there', async () => {
    const history = SessionHistorySchema.parse(await ok('GET', `${site('secondary')}/sessions/orders/history?maxPoints=50`));
    expect(history).toMatchObject({ session: 'orders', site: 'secondary' });
    expect(history.points.length).toBeLessThanOrEqual(50);
    expect((await call('GET', `${site('primary')}/sessions/orders/history?from=now`)).body).toMatchObject({ problem: 'bad-request' });
    expect((await call('GET', `${site('primary')}/sessions/orders/history?maxPoints=100000`)).body).toMatchObject({ problem: 'bad-request' });
    expect((await call('GET', `${site('primary')}/sessions/nobody/history`)).body).toMatchObject({ problem: 'not-found' });
  });

  it("a session report holds both sites' events and histories, copy sets by name with their last verify, the flash copies of its volumes; the same in JSON, CSV and PDF", async () => {
    const report = await fetchReport(`${site('primary')}/sessions/orders/report`);
    const { document } = report;
    expect(document.sites.map((each) => [each.site, each.reachable])).toEqual([
      ['primary', true],
      ['secondary', true],
    ]);
    const [orders] = document.sessions;
    expect(orders.site).toBe('primary');
    expect(orders.copySets).toEqual([
      expect.objectContaining({ name: 'primary:db -> secondary:db-copy', h1Site: 'primary', h1Volume: 'db', h2Site: 'secondary', h2Volume: 'db-copy', state: 'duplex', trackCount: 256 }),
    ]);
    expect(orders.copySets[0].lastVerify).toMatchObject({ ok: true, trigger: 'request', differingTracks: 0 });
    expect(orders.copySets[0].lastVerify!.comparedTracks).toBeGreaterThan(0);
    // Events from both agents, each as that agent logged it.
    const sites = new Set(orders.events.map((event) => event.site));
    expect(sites).toEqual(new Set(['primary', 'secondary']));
    for (const which of ['primary', 'secondary'] as const) {
      const log: AgentEvent[] = (await backend.sites.client(ids[which]).events(0, 1000)).events;
      const theirs = orders.events.filter((event) => event.site === which).map(({ site: _site, ...event }) => event);
      expect(theirs.length).toBeGreaterThan(0);
      for (const event of theirs) expect(log).toContainEqual(event);
    }
    expect(orders.events.map((event) => event.time)).toEqual([...orders.events.map((event) => event.time)].sort());
    // Each site's own samples: the suspension with its 3 marked tracks, then duplex again.
    expect(orders.history.map((history) => history.site)).toEqual(['primary', 'secondary']);
    const atPrimary = orders.history[0].points;
    expect(atPrimary.some((point) => point.state === 'suspended' && point.outOfSyncTracks === 3 && point.outOfSyncBytes === 3 * 65536)).toBe(true);
    expect(atPrimary.at(-1)).toMatchObject({ state: 'prepared', outOfSyncTracks: 0 });
    expect(Date.parse(document.historyTo) - Date.parse(document.historyFrom)).toBe(86_400_000);
    // Flash copies touching the session's volumes only.
    expect(orders.flashSessions).toEqual([
      expect.objectContaining({ site: 'primary', name: 'nightly', pairs: [expect.objectContaining({ source: 'db', target: 'db-pit' })] }),
    ]);
    // The audit trail: the console's calls about the session, with its certificate and the OS user running it; the CLI's with the admin's.
    const auditAtPrimary = orders.audit.filter((entry) => entry.site === 'primary');
    expect(auditAtPrimary.find((entry) => entry.route === '/v1/sessions')).toMatchObject({
      method: 'POST',
      session: 'orders',
      status: 201,
      problem: null,
      user: os.userInfo().username,
      client: { subject: expect.stringMatching(/^tandem-console@/) },
      params: { body: { name: 'orders', type: 'sync', peer: 'secondary' } },
    });
    expect(auditAtPrimary.map((entry) => entry.url)).toEqual(
      expect.arrayContaining(['/v1/sessions/orders/pairs', '/v1/sessions/orders/actions/start', '/v1/sessions/orders/actions/suspend', '/v1/sessions/orders/actions/resume', '/v1/sessions/orders/verify', '/v1/clusters/payments/members']),
    );
    expect(auditAtPrimary.find((entry) => entry.url === '/v1/clusters/payments/members')).toMatchObject({ client: { subject: 'local-admin primary' }, params: { body: { session: 'orders' } } });
    expect(auditAtPrimary.every((entry) => entry.session === 'orders')).toBe(true);
    expect(report.text).toContain('Audit trail at every reached site');
    // No journal at the secondary yet: no protection section.
    expect(orders.protection).toBeNull();
    expectSameContent(report);
    expect(report.text).toContain('Tandem - Session orders');
  });

  it('with a journal at the secondary, a session report holds the protection window, the journal use, its warnings and the bookmarks; the same in JSON, CSV and PDF', async () => {
    const policy = { budgetBytes: 256 * mib, requiredWindowSeconds: 3600, bookmarkRetentionSeconds: null };
    await ok('PUT', `${site('secondary')}/sessions/orders/journal`, policy);
    await qemuIo(`nbd://${primary.nbdAddress}/db`, 'write -P 0x51 0 128k');
    const before = JournalPointSchema.parse(await ok('POST', `${site('secondary')}/sessions/orders/journal/bookmarks`, { name: 'before-upgrade' }, 201));
    await qemuIo(`nbd://${primary.nbdAddress}/db`, 'write -P 0x52 0 128k');
    const after = JournalPointSchema.parse(await ok('POST', `${site('secondary')}/sessions/orders/journal/bookmarks`, { name: 'after-upgrade' }, 201));
    // Asked at the primary: the journal is read where it is, at the secondary.
    const report = await fetchReport(`${site('primary')}/sessions/orders/report`);
    const [orders] = report.document.sessions;
    expect(orders.protection).toMatchObject({ site: 'secondary', problem: null, journal: { session: 'orders', policy, volumes: ['db-copy'] } });
    expect(orders.protection!.bookmarks).toEqual([
      { name: 'before-upgrade', time: before.time, seq: before.seq },
      { name: 'after-upgrade', time: after.time, seq: after.seq },
    ]);
    const status = orders.protection!.journal!.status;
    expect(status).toMatchObject({ bookmarkCount: 2, requiredWindowSeconds: 3600, budgetBytes: 256 * mib });
    expect(status.usedBytes).toBeGreaterThan(0);
    expect(status.pointCount).toBeGreaterThanOrEqual(2);
    expect(report.text).toContain('Policy: space 256 MiB · required window 1 h · bookmarks kept until space runs out');
    expect(report.text).toMatch(/Window covered \d+ (s|min) of 1 h required/);
    expect(report.text).toMatch(new RegExp(`Journal use [\\d.]+ [KMG]?i?B of 256 MiB \\(\\d+ %\\) · ${status.pointCount} points, 2 bookmarks`));
    expect(report.text).toContain(`before-upgrade ${before.time} ${before.seq}`);
    expectSameContent(report);
  });

  it("serves a site's audit trail through the backend, filtered by session, and refuses bad input with bad-request", async () => {
    const all = AuditListSchema.parse(await ok('GET', `${site('primary')}/audit`));
    expect(all.site).toBe('primary');
    // The volumes the console created, named by the console's certificate and user.
    expect(all.entries.filter((entry) => entry.route === '/v1/volumes').map((entry) => [entry.target, entry.status, entry.user])).toEqual(
      ['db', 'db-pit', 'misc', 'misc-pit'].map((name) => [`volume ${name}`, 201, os.userInfo().username]),
    );
    const orders = AuditListSchema.parse(await ok('GET', `${site('primary')}/audit?session=orders&limit=2`));
    expect(orders.entries).toHaveLength(2);
    expect(orders.truncated).toBe(true);
    expect(orders.entries.every((entry) => entry.session === 'orders')).toBe(true);
    expect(orders.entries.map((entry) => entry.id)).toEqual(all.entries.filter((entry) => entry.session === 'orders').slice(-2).map((entry) => entry.id));
    expect((await call('GET', `${site('primary')}/audit?since=yesterday`)).body).toMatchObject({ problem: 'bad-request' });
    expect((await call('GET', `${site('primary')}/audit?limit=-1`)).body).toMatchObject({ problem: 'bad-request' });
  });

  it("a cluster report holds the master data set history and each member's full session report, the same in every format", async () => {
    await waitFor(async () => ((await ok('GET', `${site('primary')}/clusters/payments/history`)).records as unknown[]).length >= 3, 'master data set records');
    const report = await fetchReport(`${site('primary')}/clusters/payments/report`);
    const { document, rows, text } = report;
    expect(document).toMatchObject({ kind: 'cluster', cluster: { name: 'payments', processorSite: 'primary' }, missing: [] });
    const records = document.clusterHistory!.records;
    expect(records.length).toBeGreaterThanOrEqual(3);
    expect(records.at(-1)!.members.map((member) => member.session)).toEqual(['orders']);
    expect(rowsOf(rows, 'mds-record').map((row) => [row.sequence, row.time, row.health, row.consistency_time])).toEqual(
      records.map((record) => [String(record.sequence), record.time, record.health, cell(record.consistencyTime)]),
    );
    expect(text).toContain('Master data set history at primary');
    for (const record of records) expect(text).toContain(`${record.sequence} ${record.time} ${record.health}`);
    expect(rowsOf(rows, 'cluster-member').map((row) => [row.session, row.site])).toEqual([['orders', 'primary']]);
    expect(document.sessions.map((each) => each.session.name)).toEqual(['orders']);
    expect(document.sessions[0].history.map((history) => history.site)).toEqual(['primary', 'secondary']);
    expectSameContent(report);
  });

  it('names a site it cannot reach as unreachable with the time, in every format, and reports the rest from the other site', async () => {
    await secondary.stop();
    const down = await waitFor(async () => {
      const known = backend.sites.get(ids.secondary);
      return known.connection.state !== 'connected' && known;
    }, 'the backend to notice the secondary is gone');
    // Asked at the stopped site itself: built from the primary, the secondary named.
    for (const from of ['primary', 'secondary'] as const) {
      const report = await fetchReport(`${site(from)}/sessions/orders/report`);
      const { document, text } = report;
      const secondarySite = document.sites.find((each) => each.site === 'secondary');
      expect(secondarySite).toMatchObject({ reachable: false, unreachableSince: down.connection.since });
      expect(secondarySite!.problem).toMatch(/^(reconnecting|offline|connecting)/);
      const [orders] = document.sessions;
      expect(orders.site).toBe('primary');
      expect(orders.sites.find((each) => each.site === 'secondary')).toMatchObject({ reachable: false });
      expect(new Set(orders.events.map((event) => event.site))).toEqual(new Set(['primary']));
      expect(orders.history.map((history) => history.site)).toEqual(['primary']);
      expect(text).toContain('No history from secondary: not reachable when the report was built.');
      // The journal is at the secondary: its state unknown, with why, not left out.
      expect(orders.protection).toMatchObject({ site: 'secondary', journal: null, bookmarks: [], problem: expect.stringMatching(/^(reconnecting|offline|connecting)/) });
      expectSameContent(report);
    }
  });
});

describe('report CSV', () => {
  it('quotes messages holding commas and quotes', async () => {
    const document: ReportDocument = {
      kind: 'session',
      title: 'Session orders',
      generatedAt: '2026-01-01T00:00:00.000Z',
      historyFrom: '2025-12-31T00:00:00.000Z',
      historyTo: '2026-01-01T00:00:00.000Z',
      sites: [],
      cluster: null,
      clusterHistory: null,
      missing: [],
      sessions: [
        {
          site: 'alpha',
          session: SessionInfoSchema.parse({
            id: 's1', name: 'orders', type: 'sync', state: 'prepared', health: 'normal', direction: 'h1-h2', recoverable: true, role: 'h1',
            h1Site: 'alpha', h2Site: 'beta', consistencyTime: null, exposureSeconds: 0, detail: null, pairs: [], createdAt: 'then', updatedAt: 'then',
            observedAt: 'then', stateFrom: { site: 'alpha', at: 'then' }, peers: [],
          }),
          sites: [],
          copySets: [],
          events: [{ id: 2, time: 't2', type: 'session.state', severity: 'info', subject: 'orders', message: 'orders is prepared, "duplex"', site: 'alpha' }],
          history: [],
          flashSessions: [],
          audit: [],
          protection: null,
        },
      ],
    };
    const csv = await renderReport(document, 'csv');
    const rows = Papa.parse<Row>(csv.content, { header: true, skipEmptyLines: true }).data;
    expect(rows.find((row) => row.record === 'event')?.message).toBe('orders is prepared, "duplex"');
    expect(csv.content).toContain('"orders is prepared, ""duplex"""');
  });
});
