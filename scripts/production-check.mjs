// The production half of issue 14's done-means, run by `npm run test:install`
// against the agent it installed from the packed tarball (or, for a quick look,
// `node scripts/production-check.mjs [--bin agents/bin/tandem-agent.cjs]`
// against the repo's own): two sites, east and west, paired through the CLI;
// an async session east -> west; Prometheus (Debian's `prometheus`) scraping
// east's `--metrics` listener with the shipped alerting rules loaded; west
// killed with SIGKILL -> east raises link-down and session-suspended (its
// `alerts list`, its `tandem_alert_active` metric, Prometheus's firing
// `TandemAgentAlert`); west started again on the same addresses -> the session
// mirrors again and the alerts clear; the audit export names who started the
// session and who set its thresholds (the client certificate and the OS user).
// Every wait polls with a deadline. What cannot run here is printed as a skip
// with its reason (no Prometheus installed).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `test` (sync or async; a throw counts as not yet) until it returns a truthy value, or fails with `what`. */
export async function until(what, test, ms = 60_000, detail = () => '') {
  const deadline = Date.now() + ms;
  let last = null;
  for (;;) {
    try {
      const value = await test();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${last ? ` (last error: ${last.message})` : ''}${detail()}`);
    await sleep(200);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function getJson(url) {
  const answer = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return answer.json();
}

/**
 * Runs the steps with `bin` (the tandem-agent executable) and `rules` (the
 * Prometheus rules file shipped with it) in `dir`. `step` prints progress.
 * Throws on the first step that fails.
 */
export async function productionSteps({ bin, rules, dir, step }) {
  await mkdir(dir, { recursive: true });
  const children = new Set();
  const env = { ...process.env, TANDEM_AGENT_FROM: process.env.TANDEM_AGENT_FROM ?? '' };
  delete env.NOTIFY_SOCKET;
  const cli = (args) => execFileSync(bin, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  const cliJson = (args) => JSON.parse(cli([...args, '--json']));
  const logs = new Map();
  const start = (name, data, args) => {
    const child = spawn(bin, ['run', '--data', data, '--log-level', 'warn', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output = (output + chunk).slice(-32 * 1024)));
    child.stderr.on('data', (chunk) => (output = (output + chunk).slice(-32 * 1024)));
    logs.set(name, () => output);
    children.add(child);
    child.exited = new Promise((resolve) => child.once('exit', (code, signal) => (children.delete(child), resolve(code ?? signal))));
    return child;
  };
  const ready = (name, child) => until(`${name} ready`, () => logs.get(name)().includes('ready') || (child.exitCode !== null && Promise.reject(new Error(`${name} exited: ${logs.get(name)()}`))), 60_000);
  try {
    const east = path.join(dir, 'east');
    const west = path.join(dir, 'west');
    cli(['init', '--data', east, '--site', 'east']);
    cli(['init', '--data', west, '--site', 'west']);
    // West keeps its addresses across the kill (east knows them from pairing), as a host's service would.
    const westArgs = ['--api', `127.0.0.1:${await freePort()}`, '--nbd', '127.0.0.1:0', '--link', `127.0.0.1:${await freePort()}`];
    let westAgent = start('west', west, westArgs);
    const eastAgent = start('east', east, ['--api', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--link', '127.0.0.1:0', '--metrics', '127.0.0.1:0']);
    await ready('west', westAgent);
    await ready('east', eastAgent);
    const eastRun = JSON.parse(await readFile(path.join(east, 'run.json'), 'utf8'));
    const westRun = JSON.parse(await readFile(path.join(west, 'run.json'), 'utf8'));
    step(`east ready (metrics at http://${eastRun.metricsAddress}/metrics), west ready`);

    const token = cliJson(['token', '--data', west]);
    cli(['pair', '--data', east, '--with', westRun.apiAddress, '--token', token.token, '--fingerprint', token.certificateFingerprint]);
    cli(['volume', 'create', 'db', '32M', '--data', east]);
    cli(['volume', 'create', 'db', '32M', '--data', west]);
    cli(['session', 'create', 'gold', '--type', 'async', '--peer', 'west', '--data', east]);
    cli(['session', 'add', 'gold', 'db', 'db', '--data', east]);
    cli(['session', 'start', 'gold', '--data', east]);
    cli(['alerts', 'set', '--session', 'gold', '--link-down', '2', '--data', east]);
    const state = () => cliJson(['session', 'show', 'gold', '--data', east]).state;
    await until('gold prepared (mirroring)', () => state() === 'prepared', 120_000);
    step('paired east with west; async session gold east -> west is prepared; its link-down alert after 2 s');

    // Prometheus with the shipped rules, scraping east as job `tandem-agent` (the rules' job name).
    let prometheus = null;
    let prometheusAddress = null;
    const hasPrometheus = spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status === 0;
    if (!hasPrometheus) step('SKIP Prometheus: no `prometheus` binary (apt-get install prometheus); the metric is read from the listener directly');
    else {
      const config = path.join(dir, 'prometheus.yml');
      await writeFile(
        config,
        [
          'global:',
          '  scrape_interval: 1s',
          '  scrape_timeout: 1s',
          '  evaluation_interval: 1s',
          `rule_files: ['${rules}']`,
          'scrape_configs:',
          '  - job_name: tandem-agent',
          '    static_configs:',
          `      - targets: ['${eastRun.metricsAddress}']`,
          '',
        ].join('\n'),
      );
      prometheusAddress = `127.0.0.1:${await freePort()}`;
      prometheus = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=${prometheusAddress}`, '--log.level=warn'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      prometheus.stdout.on('data', (chunk) => (output = (output + chunk).slice(-32 * 1024)));
      prometheus.stderr.on('data', (chunk) => (output = (output + chunk).slice(-32 * 1024)));
      children.add(prometheus);
      await until('prometheus ready', async () => (await getJson(`http://${prometheusAddress}/api/v1/status/buildinfo`)).status === 'success', 60_000, () => `\n${output}`);
      const rulesLoaded = await until('the shipped rules loaded', async () => {
        const answer = await getJson(`http://${prometheusAddress}/api/v1/rules`);
        return answer.data?.groups?.flatMap((group) => group.rules.map((rule) => rule.name)).includes('TandemAgentAlert') && answer.data.groups;
      });
      await until('east scraped (up == 1)', async () => (await getJson(`http://${prometheusAddress}/api/v1/query?query=up%7Bjob%3D%22tandem-agent%22%7D`)).data?.result?.[0]?.value?.[1] === '1');
      step(`Prometheus scrapes east with the shipped rules (${rulesLoaded.flatMap((group) => group.rules).length} rules)`);
    }
    const metric = async () => (await fetch(`http://${eastRun.metricsAddress}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const firing = async () => {
      const answer = await getJson(`http://${prometheusAddress}/api/v1/query?query=${encodeURIComponent('ALERTS{alertname="TandemAgentAlert",alertstate="firing"}')}`);
      return (answer.data?.result ?? []).map((series) => series.metric.kind).sort();
    };
    const activeKinds = () => cliJson(['alerts', 'list', '--session', 'gold', '--data', east]).active.map((alert) => alert.kind).sort();

    // The peer dies.
    westAgent.kill('SIGKILL');
    await westAgent.exited;
    const expected = ['link-down', 'session-suspended'];
    await until('link-down and session-suspended raised at east', () => JSON.stringify(activeKinds()) === JSON.stringify(expected), 90_000);
    await until('tandem_alert_active for both at the metrics listener', async () => {
      const text = await metric();
      return expected.every((kind) => new RegExp(`tandem_alert_active\\{kind="${kind}"[^}]*session="gold"[^}]*\\} 1`).test(text));
    });
    if (prometheus) await until('TandemAgentAlert firing in Prometheus for both', async () => JSON.stringify(await firing()) === JSON.stringify(expected), 60_000);
    step(`west killed: east raised ${expected.join(' and ')}${prometheus ? '; Prometheus fires TandemAgentAlert for both' : ''}`);

    // The peer returns; the administrator resumes if the session did not resume itself.
    westAgent = start('west', west, westArgs);
    await ready('west', westAgent);
    await until('gold mirroring again', () => {
      const now = state();
      if (now === 'suspended') {
        try {
          cli(['session', 'resume', 'gold', '--data', east]);
        } catch {
          // Raced with the agent's own resume: the next poll reads the state again.
        }
      }
      return now === 'prepared';
    }, 120_000);
    await until('the alerts cleared at east', () => activeKinds().length === 0, 90_000);
    await until('tandem_alert_active gone from the metrics listener', async () => !/tandem_alert_active\{[^}]*session="gold"/.test(await metric()));
    if (prometheus) await until('no TandemAgentAlert firing in Prometheus', async () => (await firing()).length === 0, 60_000);
    const cleared = cliJson(['alerts', 'list', '--session', 'gold', '--data', east]).recent.map((alert) => alert.kind).sort();
    if (!expected.every((kind) => cleared.includes(kind))) throw new Error(`the cleared alerts are ${cleared.join(', ')}`);
    step('west back on its addresses: gold prepared again, both alerts cleared (agent, metric' + (prometheus ? ', Prometheus)' : ')'));

    // Who did it: the audit export.
    const exportFile = path.join(dir, 'audit.csv');
    cli(['audit', 'export', exportFile, '--session', 'gold', '--data', east]);
    const [header, ...rows] = readFileSync(exportFile, 'utf8').trim().split('\n');
    const columns = header.split(',');
    const user = os.userInfo().username;
    // Matched by URL (the route column holds the pattern, e.g. /v1/sessions/:name/actions/:action).
    const find = (method, url) => rows.find((row) => row.includes(`,${method},`) && row.includes(`,${url},`));
    const started = find('POST', '/v1/sessions/gold/actions/start');
    const thresholds = find('PUT', '/v1/sessions/gold/alert-thresholds');
    for (const [what, row] of [
      ['the session start', started],
      ['the thresholds change', thresholds],
    ]) {
      if (!row) throw new Error(`the audit export has no row for ${what}:\n${header}\n${rows.join('\n')}`);
      if (!row.includes('local-admin east') || !row.includes(`,${user},`) || !row.includes(',administrator,')) {
        throw new Error(`the audit row for ${what} does not name the client, role and user (${user}): ${row}`);
      }
    }
    step(`the audit export (${rows.length} rows, columns ${columns.slice(3, 8).join(', ')}) names local-admin east, administrator, user ${user} for the start and the thresholds`);
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await sleep(100);
  }
}

if (import.meta.filename === process.argv[1]) {
  const at = process.argv.indexOf('--bin');
  const repo = path.resolve(import.meta.dirname, '..');
  const bin = at > 0 ? path.resolve(process.argv[at + 1]) : path.join(repo, 'agents/bin/tandem-agent.cjs');
  const rules = path.join(repo, 'packaging/prometheus/tandem-alerts.rules.yml');
  if (!existsSync(bin)) {
    console.error(`error: not-found: ${bin}`);
    process.exit(2);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-production-'));
  const step = (text) => console.log(`production-check: ${text}`);
  try {
    await productionSteps({ bin, rules, dir, step });
    step('ok');
  } catch (error) {
    console.error(`production-check: FAILED: ${error.message}`);
    process.exitCode = 1;
  } finally {
    if (!process.argv.includes('--keep')) await rm(dir, { recursive: true, force: true });
  }
}
