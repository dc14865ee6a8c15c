import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlertListSchema,
  AlertSettingsSchema,
  AlertWebhookPayloadSchema,
  AuditListSchema,
  EventListSchema,
  SessionAlertThresholdsViewSchema,
  type Alert,
  type AlertList,
  type AlertWebhookPayload,
} from '@tandem/contract';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { scrape, valueOf } from './helpers/metrics.ts';
import { agentCliJson } from './helpers/run-command.ts';
import { sessionPath, showSession, startOneCopySet, until } from './helpers/session-api.ts';

/**
 * Alerts with real agent processes on loopback: thresholds set per session
 * (CLI and API, validated with stable problem codes, audited); the
 * secondary killed raises a link-down and an exposure alert at the primary
 * as `alert.raised` events, in `GET /v1/alerts` and at a webhook (a real
 * HTTP server that fails the first POST, so the retry is exercised); the
 * active alert survives a restart of the primary with the same id; the
 * secondary back clears them (`alert.cleared`, the webhook told).
 * Evaluation runs every 200 ms and clears after 1.5 s away (env), so the
 * test waits for states by polling, never for fixed times.
 */

const alertEnv = { TANDEM_ALERT_INTERVAL_MS: '200', TANDEM_ALERT_CLEAR_MS: '1500' };

let alpha: AgentProcess;
let beta: AgentProcess;
let webhook: http.Server;
let webhookUrl: string;
const received: AlertWebhookPayload[] = [];
let webhookCalls = 0;

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents([
    { site: 'alpha', env: alertEnv, extraArgs: ['--metrics', '127.0.0.1:0'] },
    { site: 'beta', env: alertEnv },
  ]);
  webhook = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      webhookCalls++;
      // The very first POST fails: the agent must retry it.
      if (webhookCalls === 1) {
        response.writeHead(503).end('not yet');
        return;
      }
      received.push(AlertWebhookPayloadSchema.parse(JSON.parse(body)));
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hooks/tandem?token=secret`;
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
  await new Promise((resolve) => webhook?.close(resolve));
});

const alerts = (agent: AgentProcess, query = ''): Promise<AlertList> => agent.api.call('GET', `/v1/alerts${query}`, AlertListSchema);

function activeOf(list: AlertList, key: string): Alert | undefined {
  return list.active.find((alert) => alert.key === key);
}

async function alertEvents(agent: AgentProcess, type: string): Promise<Alert[]> {
  const { events } = await agent.api.call('GET', `/v1/events?type=${type}&limit=1000`, EventListSchema);
  return events.map((event) => event.data?.alert as Alert);
}

describe('alert thresholds', () => {
  it('starts with working defaults and no alerts', async () => {
    const settings = await alpha.api.call('GET', '/v1/alerts/settings', AlertSettingsSchema);
    expect(settings).toEqual({
      poolFullPercent: 90,
      webhookUrl: null,
      sessionDefaults: { rpoTargetSeconds: null, linkDownSeconds: 30, backlogPercent: 80, enabled: true },
    });
    const list = await until('alpha evaluated its rules', async () => {
      const answer = await alerts(alpha);
      return answer.evaluatedAt ? answer : null;
    });
    expect(list.site).toBe('alpha');
    expect(list.active).toEqual([]);
  });

  it('refuses bad thresholds with stable problem codes and changes nothing', async () => {
    await startOneCopySet(alpha, beta, { name: 'gold', type: 'async', h2Site: 'beta', volume: 'p-gold', copy: 'c-gold', sizeMiB: 16 });
    const path = `${sessionPath('gold')}/alert-thresholds`;
    await expect(alpha.api.call('PUT', path, null, { linkDownSeconds: -5 })).rejects.toMatchObject({
      problem: 'invalid-threshold',
      message: expect.stringMatching(/linkDownSeconds.*above 0/),
    });
    await expect(alpha.api.call('PUT', path, null, { rpoTargetSeconds: 0 })).rejects.toMatchObject({ problem: 'invalid-threshold' });
    await expect(alpha.api.call('PUT', path, null, { backlogPercent: 150 })).rejects.toMatchObject({ problem: 'invalid-threshold' });
    await expect(alpha.api.call('PUT', path, null, { linkDownSeconds: 'soon' })).rejects.toMatchObject({ problem: 'bad-request' });
    await expect(alpha.api.call('PUT', path, null, { rpo: 5 })).rejects.toMatchObject({ problem: 'bad-request' });
    await expect(alpha.api.call('PUT', `${sessionPath('nope')}/alert-thresholds`, null, { linkDownSeconds: 5 })).rejects.toMatchObject({ problem: 'not-found' });
    await expect(alpha.api.call('PUT', '/v1/alerts/settings', null, { poolFullPercent: 0 })).rejects.toMatchObject({ problem: 'invalid-threshold' });
    await expect(alpha.api.call('PUT', '/v1/alerts/settings', null, { sessionDefaults: { linkDownSeconds: -1 } })).rejects.toMatchObject({
      problem: 'invalid-threshold',
    });
    await expect(alpha.api.call('PUT', '/v1/alerts/settings', null, { webhookUrl: 'ftp://example.com/x' })).rejects.toMatchObject({ problem: 'bad-request' });
    const view = await alpha.api.call('GET', path, SessionAlertThresholdsViewSchema);
    expect(view.own).toEqual({ rpoTargetSeconds: null, linkDownSeconds: null, backlogPercent: null, enabled: null });
    // The CLI refuses a negative number before calling.
    const cli = await alpha.cli(['alerts', 'set', '--session', 'gold', '--link-down', '-3']);
    expect(cli.code).not.toBe(0);
  });

  it('sets a session\'s thresholds and the site webhook with the CLI; the calls are audited', async () => {
    const view = await agentCliJson<{ own: Record<string, unknown>; effective: Record<string, unknown> }>(alpha, [
      'alerts', 'set', '--session', 'gold', '--link-down', '1', '--rpo', '2',
    ]);
    expect(view.own).toMatchObject({ linkDownSeconds: 1, rpoTargetSeconds: 2, backlogPercent: null });
    expect(view.effective).toEqual({ linkDownSeconds: 1, rpoTargetSeconds: 2, backlogPercent: 80, enabled: true });
    const settings = await agentCliJson<{ webhookUrl: string | null }>(alpha, ['alerts', 'set', '--webhook', webhookUrl]);
    expect(settings.webhookUrl).toBe(webhookUrl);
    const audit = await alpha.api.call('GET', '/v1/audit?limit=50', AuditListSchema);
    expect(audit.entries).toContainEqual(
      expect.objectContaining({ method: 'PUT', route: '/v1/sessions/:name/alert-thresholds', session: 'gold', target: 'session gold', status: 200 }),
    );
    // The webhook's address (often a secret itself, here with a token) is redacted in the trail.
    expect(audit.entries).toContainEqual(
      expect.objectContaining({ method: 'PUT', route: '/v1/alerts/settings', target: 'alert settings', status: 200, params: { body: { webhookUrl: '[redacted]' } } }),
    );
    expect(audit.entries).toContainEqual(
      expect.objectContaining({ method: 'PUT', route: '/v1/sessions/:name/alert-thresholds', problem: 'invalid-threshold', status: 400 }),
    );
  });
});

describe('alerts raised and cleared', () => {
  it('the secondary killed raises link-down and exposure at the primary; they survive a restart; its return clears them', async () => {
    await until('gold prepared', async () => (await showSession(alpha, 'gold')).state === 'prepared');
    await until('no alerts while gold runs', async () => (await alerts(alpha)).active.length === 0);

    await beta.kill('SIGKILL');
    const raised = await until('link-down and exposure raised at alpha', async () => {
      const list = await alerts(alpha);
      const link = activeOf(list, 'link-down:gold:beta');
      const exposure = activeOf(list, 'exposure:gold');
      return link && exposure ? { link, exposure } : null;
    }, 30_000);
    expect(raised.link).toMatchObject({
      kind: 'link-down',
      severity: 'critical',
      site: 'alpha',
      subject: { kind: 'link', session: 'gold', name: 'beta' },
      clearedAt: null,
      threshold: 1,
    });
    expect(raised.link.value).toBeGreaterThanOrEqual(1);
    expect(raised.exposure).toMatchObject({ kind: 'exposure', severity: 'warning', subject: { kind: 'session', session: 'gold', name: null }, threshold: 2 });
    // Exported to Prometheus while active.
    const { samples } = await scrape(alpha.runInfo.metricsAddress!);
    expect(valueOf(samples, 'tandem_alert_active', { kind: 'link-down', severity: 'critical', session: 'gold', subject: 'gold link to beta' })).toBe(1);
    // Raised as events on the event stream's log.
    const raisedEvents = await alertEvents(alpha, 'alert.raised');
    expect(raisedEvents.map((alert) => alert.id)).toEqual(expect.arrayContaining([raised.link.id, raised.exposure.id]));
    // The webhook was told (after the retry of the refused first POST).
    await until('the webhook got the link-down raise', async () =>
      received.some((payload) => payload.event === 'raised' && payload.alert.id === raised.link.id),
    );
    expect(received[0]).toMatchObject({ site: 'alpha', agentId: (await alpha.api.agentInfo()).agentId });
    expect(webhookCalls).toBeGreaterThan(received.length);

    // A restart of alpha carries the exposure alert on (the same alert, not a new one).
    await alpha.restart({ samePorts: true });
    const after = await until('alpha evaluated after its restart', async () => {
      const list = await alerts(alpha);
      return list.evaluatedAt ? list : null;
    });
    expect(activeOf(after, 'exposure:gold')).toMatchObject({ id: raised.exposure.id, raisedAt: raised.exposure.raisedAt });
    // The link-down alert too: held while the link is not connected, though alpha's "down since" started anew.
    await until('alpha sees gold\'s link to beta not connected', async () => {
      const view = await showSession(alpha, 'gold');
      return view.peers.some((peer) => peer.site === 'beta' && peer.link !== 'connected');
    });
    // Past the clear delay (1.5 s) of evaluations after the restart, it is still the same alert.
    await until('evaluations past the clear delay after the restart', async () => {
      const list = await alerts(alpha);
      expect(activeOf(list, 'link-down:gold:beta')).toMatchObject({ id: raised.link.id, raisedAt: raised.link.raisedAt });
      return Date.parse(list.evaluatedAt!) > Date.parse(after.evaluatedAt!) + 2000;
    });
    expect((await alertEvents(alpha, 'alert.raised')).filter((alert) => alert.key === 'exposure:gold')).toHaveLength(1);

    await beta.restart({ samePorts: true });
    await until('gold normal again at alpha', async () => (await showSession(alpha, 'gold')).health === 'normal', 60_000);
    const cleared = await until('link-down and exposure cleared', async () => {
      const list = await alerts(alpha, '?session=gold');
      if (list.active.length > 0) return null;
      const link = list.recent.find((alert) => alert.key === 'link-down:gold:beta');
      const exposure = list.recent.find((alert) => alert.key === 'exposure:gold' && alert.id === raised.exposure.id);
      return link && exposure ? { link, exposure } : null;
    }, 60_000);
    expect(Date.parse(cleared.exposure.clearedAt!)).toBeGreaterThan(Date.parse(cleared.exposure.raisedAt));
    const clearedEvents = await alertEvents(alpha, 'alert.cleared');
    expect(clearedEvents.map((alert) => alert.key)).toEqual(expect.arrayContaining(['link-down:gold:beta', 'exposure:gold']));
    await until('the webhook got the clears', async () =>
      ['link-down:gold:beta', 'exposure:gold'].every((key) => received.some((payload) => payload.event === 'cleared' && payload.alert.key === key)),
    );
    // The CLI lists them as recently cleared.
    const listed = await agentCliJson<AlertList>(alpha, ['alerts', 'list', '--session', 'gold']);
    expect(listed.active).toEqual([]);
    expect(listed.recent.map((alert) => alert.key)).toContain('exposure:gold');
  }, 240_000);

  it('alerts off for a session: its conditions raise nothing', async () => {
    await alpha.api.call('PUT', `${sessionPath('gold')}/alert-thresholds`, SessionAlertThresholdsViewSchema, { enabled: false });
    const before = (await alertEvents(alpha, 'alert.raised')).length;
    await alpha.api.call('POST', `${sessionPath('gold')}/actions/suspend`, null, {});
    await until('gold suspended', async () => (await showSession(alpha, 'gold')).state === 'suspended');
    // Two evaluations after the suspension at least (evaluatedAt moves on), and no new raise.
    const first = (await alerts(alpha)).evaluatedAt!;
    await until('two more evaluations', async () => {
      const list = await alerts(alpha);
      return Date.parse(list.evaluatedAt!) > Date.parse(first) + 400;
    });
    expect((await alertEvents(alpha, 'alert.raised')).length).toBe(before);
    // On again: the suspension raises at once.
    await alpha.api.call('PUT', `${sessionPath('gold')}/alert-thresholds`, SessionAlertThresholdsViewSchema, { enabled: null });
    await until('session-suspended raised', async () => activeOf(await alerts(alpha), 'session-suspended:gold'));
  }, 120_000);
});
