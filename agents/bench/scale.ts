/**
 * Scale check of the console (issue 14 item 7): many sites, volumes and
 * sessions, and the console open on them in headless Chromium.
 *
 *   npm run bench:scale -- [--sites 10] [--volumes 10000] [--sessions 1000] [--creations 100]
 *
 * Real agents (one per site, paired in a ring: site i with site i+1), the
 * real console backend paired with every site, and the built renderer
 * (`npm run build` first). Volumes are spread evenly over the sites; each
 * session is an async session of site i with one copy set i -> i+1, defined
 * (not started: the check is about the console, not about mirroring 1,000
 * sessions on one machine). It prints:
 * - load-to-rows: from opening the console to the first volume rows of a
 *   site, and to the first session cards;
 * - scroll: frame intervals while the volumes table scrolls from top to
 *   bottom (median and p95, and how many frames took over 50 ms);
 * - heap: the renderer's JS heap after loading, and each idle agent's RSS;
 * - creations: `--creations` volumes created through the backend with no
 *   console open, then with the console open on that site's volumes, with
 *   the ratio of the times and the number of volume-list downloads the open
 *   console made (the events refetch at most once per burst).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Page } from '@playwright/test';
import { agentCli, initAgent, pairingToken, startAgent, type RunningAgent } from '../../scripts/lib/agents.mjs';
import { consoleApi, startConsoleBackend } from '../../scripts/lib/backend.mjs';

interface Options {
  sites: number;
  volumes: number;
  sessions: number;
  creations: number;
  /** Where to save a screenshot of each view (none: no screenshots). */
  screenshots: string | null;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { sites: 10, volumes: 10_000, sessions: 1_000, creations: 100, screenshots: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--screenshots' && argv[i + 1]) {
      options.screenshots = argv[++i];
      continue;
    }
    const key = argv[i].replace(/^--/, '') as Exclude<keyof Options, 'screenshots'>;
    if (!(key in options)) throw new Error(`bad-request: unknown option ${argv[i]} (--sites, --volumes, --sessions, --creations, --screenshots DIR)`);
    const value = Number(argv[++i]);
    if (!Number.isInteger(value) || value < (key === 'sites' ? 2 : 0)) throw new Error(`bad-request: --${key} needs a whole number${key === 'sites' ? ' of at least 2' : ''}`);
    options[key] = value;
  }
  return options;
}

const MiB = 1024 * 1024;
const ms = (value: number) => `${value.toFixed(0)} ms`;
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

/** Runs `count` tasks, `width` at a time. */
async function inParallel(count: number, width: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Frame intervals while the volumes table scrolls from top to bottom in steps of one screen. */
async function scrollFrames(page: Page): Promise<number[]> {
  // (Browser code, as text: the agent's TypeScript has no DOM types.)
  return page.evaluate(`(async () => {
    const scroller = document.querySelector('[role="table"][aria-label="Volumes"] > div:nth-child(2)');
    const frames = [];
    let last = performance.now();
    const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
    while (scroller.scrollTop + scroller.clientHeight < scroller.scrollHeight - 1) {
      scroller.scrollTop += scroller.clientHeight;
      await frame();
      const now = performance.now();
      frames.push(now - last);
      last = now;
    }
    return frames;
  })()`) as Promise<number[]>;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-scale-'));
  const agents: RunningAgent[] = [];
  let stopBackend: (() => Promise<void>) | null = null;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--enable-precise-memory-info'],
  });
  try {
    const names = Array.from({ length: options.sites }, (_, i) => `site${String(i).padStart(2, '0')}`);
    console.log(`${options.sites} sites, ${options.volumes} volumes, ${options.sessions} sessions, ${options.creations} creations`);
    for (const site of names) await initAgent({ dataDir: path.join(dir, site), site });
    // One after another: each picks free ports just before it binds them.
    for (const site of names) agents.push(await startAgent({ dataDir: path.join(dir, site) }));
    // Ring of site pairings: site i with site i+1 (each session's peer).
    for (let i = 0; i < options.sites; i++) {
      const next = agents[(i + 1) % options.sites];
      const { token, certificateFingerprint } = await pairingToken(next.dataDir);
      await agentCli(['pair', '--with', next.apiAddress, '--token', token, '--fingerprint', certificateFingerprint, '--data', agents[i].dataDir]);
    }
    const backend = await startConsoleBackend({ configDir: path.join(dir, 'console') });
    stopBackend = () => backend.stop();
    const siteIds: string[] = [];
    for (const agent of agents) {
      const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
      const site = (await consoleApi(backend, 'POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint })) as { id: string };
      siteIds.push(site.id);
    }
    const api = (method: string, route: string, body?: unknown) => consoleApi(backend, method, route, body);

    // Volumes, evenly over the sites; each session takes vol-i at its site and its copy at the next.
    const seedStarted = performance.now();
    await inParallel(options.volumes, 8, async (index) => {
      const site = index % options.sites;
      await api('POST', `/api/sites/${siteIds[site]}/volumes`, { name: `vol-${String(Math.floor(index / options.sites)).padStart(5, '0')}`, sizeBytes: 16 * MiB });
    });
    await inParallel(options.sessions, 4, async (index) => {
      const site = index % options.sites;
      const next = (site + 1) % options.sites;
      const name = `s-${String(index).padStart(4, '0')}`;
      const h2 = `copy-${name}`;
      await api('POST', `/api/sites/${siteIds[next]}/volumes`, { name: h2, sizeBytes: 16 * MiB });
      await api('POST', `/api/sites/${siteIds[site]}/sessions`, { name, type: 'async', peer: names[next] });
      await api('POST', `/api/sites/${siteIds[site]}/sessions/${name}/pairs`, {
        h1Volume: `vol-${String(Math.floor(index / options.sites)).padStart(5, '0')}`,
        h2Volume: h2,
      });
    });
    console.log(`seeded in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);
    const agentRss = await Promise.all(agents.map((agent) => rssMiB(agent.process.pid!)));

    // The console: load to the first rows, scroll, heap. Each figure is printed as it is taken (a view that never
    // answers is a result too: "over N s").
    const rows: Array<[string, string]> = [];
    const report = (measure: string, value: string) => {
      rows.push([measure, value]);
      console.log(`${measure}: ${value}`);
    };
    const limitMs = 120_000;
    const timed = async (measure: string, action: () => Promise<string | void>): Promise<boolean> => {
      const started = performance.now();
      try {
        const extra = await action();
        report(measure, `${ms(performance.now() - started)}${extra ? ` (${extra})` : ''}`);
        return true;
      } catch (error) {
        report(measure, `no answer within ${limitMs / 1000} s (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`);
        return false;
      }
    };
    report('idle agent RSS median / max', `${percentile(agentRss, 50).toFixed(0)} / ${Math.max(...agentRss).toFixed(0)} MiB`);
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.setDefaultTimeout(limitMs);
    const cdp = await page.context().newCDPSession(page);
    const heapMiB = async () => (((await cdp.send('Runtime.getHeapUsage')) as { usedSize: number }).usedSize / MiB).toFixed(1);
    const volumesShown = await timed(`load to first volume rows of ${names[0]}`, async () => {
      await page.goto(backend.browserUrl);
      await page.getByRole('heading', { name: 'Tandem' }).waitFor();
      await page.getByRole('navigation').getByText(names[0], { exact: true }).click();
      await page.locator('[data-testid^="volume-row-"]').first().waitFor();
      return `${await page.getByRole('table', { name: 'Volumes' }).getAttribute('aria-rowcount')} rows`;
    });
    const screenshot = async (name: string) => {
      if (options.screenshots) await page.screenshot({ path: path.join(options.screenshots, `${name}.png`) });
    };
    if (volumesShown) {
      await screenshot('volumes');
      const frames = await scrollFrames(page);
      report('scroll volumes top to bottom: frames', String(frames.length));
      report('scroll frame interval median / p95 / max', `${ms(percentile(frames, 50))} / ${ms(percentile(frames, 95))} / ${ms(Math.max(0, ...frames))}`);
      report('scroll frames over 50 ms', String(frames.filter((frame) => frame > 50).length));
      report('renderer JS heap used (volumes)', `${await heapMiB()} MiB`);
    }
    const sessionsShown = await timed('Sessions view to first session cards', async () => {
      await page.getByRole('navigation').getByText('Sessions', { exact: true }).click();
      await page.locator('[data-testid^="session-card-"]').first().waitFor();
      return `${await page.locator('[data-testid^="session-card-"]').count()} cards in the DOM`;
    });
    if (sessionsShown) {
      report('renderer JS heap used (sessions)', `${await heapMiB()} MiB`);
      await screenshot('sessions');
    }

    // Creations: with a console open on the site's volumes (counting its volume-list downloads), then without one.
    const create = async (prefix: string) => {
      const started = performance.now();
      for (let i = 0; i < options.creations; i++) await api('POST', `/api/sites/${siteIds[0]}/volumes`, { name: `${prefix}-${i}`, sizeBytes: 16 * MiB });
      return performance.now() - started;
    };
    let downloads = 0;
    const listRoute = `/api/sites/${siteIds[0]}/volumes`;
    page.on('request', (request) => {
      if (request.method() === 'GET' && new URL(request.url()).pathname === listRoute) downloads++;
    });
    const onVolumes = await timed(`back to the volumes of ${names[0]}`, async () => {
      await page.getByRole('navigation').getByText(names[0], { exact: true }).click();
      await page.locator('[data-testid^="volume-row-"]').first().waitFor();
    });
    downloads = 0;
    const withConsole = await create('open');
    if (onVolumes) {
      // The last burst's refetch lands before counting.
      await page.locator(`[data-testid="volume-row-open-${options.creations - 1}"]`).waitFor({ state: 'attached', timeout: 30_000 }).catch(() => undefined);
    }
    const downloaded = downloads;
    await page.close();
    const withoutConsole = await create('closed');
    report(`${options.creations} creations, no console`, ms(withoutConsole));
    report(`${options.creations} creations, console open on the site`, `${ms(withConsole)} (${(withConsole / withoutConsole).toFixed(2)}x)`);
    report('volume-list downloads by the open console during them', String(downloaded));

    console.log('');
    console.log('| measure | value |');
    console.log('|---|---|');
    for (const [measure, value] of rows) console.log(`| ${measure} | ${value} |`);
  } finally {
    await browser.close();
    await stopBackend?.();
    await Promise.all(agents.map((agent) => agent.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
