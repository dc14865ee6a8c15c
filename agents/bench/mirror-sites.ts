/**
 * Two Tandem agent processes for `bench:mirror`, paired through the CLI
 * (`token`, `pair --with`), with alpha's peer link routed through the
 * FaultProxy (`peers set-link beta PROXY`) so round trips can be added.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FaultProxy } from '../test/helpers/fault-proxy.ts';
import type { ApiClient } from './api.ts';
import { nbdUri } from './fio.ts';
import { sleep } from './net.ts';
import { TandemAgent } from './tandem.ts';

export interface MirrorSites {
  alpha: TandemAgent;
  beta: TandemAgent;
  proxy: FaultProxy;
  /** Beta's own peer-link address (the proxy forwards to it). */
  betaLink: string;
  alphaApi: ApiClient;
  betaApi: ApiClient;
}

export async function startSites(repoRoot: string, dir: string, logDir: string): Promise<MirrorSites> {
  const agents: TandemAgent[] = [];
  for (const site of ['alpha', 'beta']) {
    const siteLogs = path.join(logDir, site);
    fs.mkdirSync(siteLogs, { recursive: true });
    const agent = new TandemAgent(repoRoot, path.join(dir, site), siteLogs);
    await agent.init(site);
    await agent.start();
    agents.push(agent);
  }
  const [alpha, beta] = agents;
  const token = JSON.parse((await beta.cli(['token', '--json'])).stdout) as { token: string };
  await alpha.cli(['pair', '--with', beta.addresses.api, '--token', token.token, '--json']);
  const [host, port] = beta.addresses.link!.split(':');
  const proxy = await FaultProxy.start({ host, port: Number(port) });
  await alpha.cli(['peers', 'set-link', 'beta', proxy.address, '--json']);
  return { alpha, beta, proxy, betaLink: beta.addresses.link!, alphaApi: await alpha.api(), betaApi: await beta.api() };
}

export function exportUri(agent: TandemAgent, volume: string): string {
  const match = /:(\d+)\/?$/.exec(agent.addresses.nbd);
  if (!match) throw new Error(`cannot read the NBD address ${agent.addresses.nbd}`);
  return nbdUri(Number(match[1]), volume);
}

export interface SessionView {
  state: string;
  detail: string | null;
  consistencyTime: string | null;
  pairs: Array<{ state: string; outOfSyncTracks: number }>;
}

export async function showSession(api: ApiClient, name: string): Promise<SessionView> {
  const response = await api.request('GET', `/v1/sessions/${encodeURIComponent(name)}`);
  if (response.status !== 200) throw new Error(`GET session ${name}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as SessionView;
}

/** Polls the API (every `everyMs`) until the session is in `state`; returns ms waited. */
export async function waitForState(api: ApiClient, name: string, state: string, timeoutMs = 120_000, everyMs = 10): Promise<number> {
  const started = performance.now();
  for (;;) {
    const view = await showSession(api, name);
    if (view.state === state) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`session ${name} stayed ${view.state} (${view.detail ?? ''}), never ${state}`);
    await sleep(everyMs);
  }
}

/** A session of one copy set defined and started through the CLI; waits for prepared. */
export async function startSession(sites: MirrorSites, name: string, type: string, h1Volume: string, h2Volume: string): Promise<void> {
  await sites.alpha.cli(['session', 'create', name, '--type', type, '--peer', 'beta', '--json']);
  await sites.alpha.cli(['session', 'add', name, h1Volume, h2Volume, '--json']);
  await sites.alpha.cli(['session', 'start', name, '--json']);
  await waitForState(sites.alphaApi, name, 'prepared', 600_000, 50);
}

export async function action(api: ApiClient, name: string, verb: string, body: unknown = {}): Promise<number> {
  const response = await api.request('POST', `/v1/sessions/${encodeURIComponent(name)}/actions/${verb}`, body);
  if (response.status !== 200) throw new Error(`${verb} ${name}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.ms;
}

export async function stopSites(sites: MirrorSites | null): Promise<void> {
  if (!sites) return;
  await Promise.allSettled([sites.alpha.stop(), sites.beta.stop()]);
  await sites.proxy.close().catch(() => {});
}
