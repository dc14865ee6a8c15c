import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { until } from './helpers/metrics.ts';
import { runCommand } from './helpers/run-command.ts';

/**
 * A real Prometheus server (Debian's `prometheus` package) scrapes a real
 * agent's `--metrics` listener every second; its query API then answers with
 * the agent's tandem_ series, NBD writes included.
 */

interface PrometheusProcess {
  child: ChildProcess;
  address: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Prometheus processes of this file, killed if the test process exits without stopping them. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

let agent: AgentProcess;
let prometheus: PrometheusProcess | null = null;
let scratch: string;

/** A port free at this moment (Prometheus cannot listen on port 0 and say which it got). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { timeout: 10_000 }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new Error(`${url} answered ${response.statusCode}: ${text.slice(0, 500)}`));
        }
      });
    });
    request.on('timeout', () => request.destroy(new Error(`${url} timed out`)));
    request.on('error', reject);
  });
}

interface QueryAnswer {
  status: string;
  data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

function query(expression: string): Promise<QueryAnswer> {
  return getJson(`http://${prometheus!.address}/api/v1/query?query=${encodeURIComponent(expression)}`) as Promise<QueryAnswer>;
}

/** Starts Prometheus scraping `target` on a free port; tries another port if the one picked was taken meanwhile. */
async function startPrometheus(target: string): Promise<PrometheusProcess> {
  const config = path.join(scratch, 'prometheus.yml');
  await writeFile(
    config,
    [
      'global:',
      // Short, but with room for a slow scrape on a loaded CI machine.
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: tandem',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  );
  for (let attempt = 1; ; attempt++) {
    const address = `127.0.0.1:${await freePort()}`;
    const child = spawn(
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${path.join(scratch, `tsdb-${attempt}`)}`, `--web.listen-address=${address}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output = (output + chunk).slice(-64 * 1024)));
    child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk).slice(-64 * 1024)));
    live.add(child);
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => {
        live.delete(child);
        resolve(code);
      }),
    );
    child.on('error', (error) => (output += `\nspawn failed: ${String(error)}`));
    const started: PrometheusProcess = { child, address, output: () => output, exited };
    const ready = await Promise.race([
      until('prometheus ready', () => getJson(`http://${address}/api/v1/status/buildinfo`).then((answer) => (answer as { status?: string }).status === 'success'), 60_000).then(
        () => true,
        () => false,
      ),
      exited.then(() => false),
    ]);
    if (ready) return started;
    child.kill('SIGKILL');
    await exited;
    if (attempt >= 3 || !/address already in use/.test(output)) throw new Error(`prometheus did not start:\n${output.slice(-4000)}`);
  }
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tandem-prometheus-'));
  agent = await startAgentProcess({ site: 'scraped', extraArgs: ['--metrics', '127.0.0.1:0'] });
  await agent.api.createVolume('scraped-volume', 8 * 1024 * 1024);
  prometheus = await startPrometheus(agent.runInfo.metricsAddress!);
}, 180_000);

afterAll(async () => {
  if (prometheus) {
    prometheus.child.kill('SIGTERM');
    const stopped = await Promise.race([prometheus.exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 20_000))]);
    if (!stopped) {
      prometheus.child.kill('SIGKILL');
      await prometheus.exited;
    }
  }
  await agent?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('a real Prometheus scraping the agent', () => {
  it('holds the agent\'s tandem_ series, the target up, and sees NBD writes', async () => {
    const info = await until('tandem_agent_info in prometheus', async () => {
      const answer = await query('tandem_agent_info');
      return answer.status === 'success' && answer.data.result.length > 0 && answer.data.result;
    });
    expect(info[0].metric).toMatchObject({ job: 'tandem', instance: agent.runInfo.metricsAddress, site: 'scraped' });
    await until('up{job="tandem"} == 1', async () => (await query('up{job="tandem"}')).data.result[0]?.value[1] === '1');

    const write = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x33 0 256k', '-c', 'flush', agent.nbdUri('scraped-volume')]);
    expect(write.code, write.out).toBe(0);
    await until('the NBD write in prometheus', async () => {
      const answer = await query('tandem_nbd_written_bytes_total{volume="scraped-volume"}');
      return answer.data.result[0]?.value[1] === String(256 * 1024);
    });
    const pool = await query('tandem_pool_used_bytes');
    expect(Number(pool.data.result[0].value[1])).toBeGreaterThanOrEqual(256 * 1024);
    // Prometheus parsed the scrapes: no sample was dropped as malformed or out of order.
    const rejected = await query('scrape_samples_scraped{job="tandem"} - scrape_samples_post_metric_relabeling{job="tandem"}');
    expect(rejected.data.result.map((sample) => sample.value[1])).toEqual(['0']);
    const targets = (await getJson(`http://${prometheus!.address}/api/v1/targets`)) as { data: { activeTargets: Array<{ scrapeUrl: string }> } };
    expect(targets.data.activeTargets.map((target) => target.scrapeUrl)).toEqual([`http://${agent.runInfo.metricsAddress}/metrics`]);
  });
});
