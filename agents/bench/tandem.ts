import fs from 'node:fs';
import path from 'node:path';
import type { Endpoint } from './anchors.ts';
import { ApiClient, loadCredentials } from './api.ts';
import { nbdUri } from './fio.ts';
import { sleep } from './net.ts';
import { run, startServer, stopServer, tailLog, type Server } from './procs.ts';

interface RunInfo {
  pid: number;
  apiAddress: string;
  nbdAddress: string | null;
  linkAddress?: string | null;
}

/** Whether the agent's CLI exists yet (it is being written alongside this benchmark). */
export function tandemPresent(repoRoot: string): boolean {
  return fs.existsSync(path.join(repoRoot, 'agents/src/cli/main.ts'));
}

/** A Tandem agent in a scratch data dir, driven through its CLI and API. */
export class TandemAgent {
  private server: Server | null = null;
  private info: RunInfo | null = null;
  private apiClient: ApiClient | null = null;
  private readonly bin: string;

  constructor(
    private readonly repoRoot: string,
    readonly dataDir: string,
    private readonly logDir: string,
  ) {
    this.bin = path.join(repoRoot, 'agents/bin/tandem-agent.cjs');
  }

  /** Runs a CLI command against the data dir; throws with its output on failure. */
  async cli(args: string[], timeoutMs = 60_000): Promise<{ stdout: string; ms: number }> {
    const result = await run(process.execPath, [this.bin, ...args, '--data', this.dataDir], { cwd: this.repoRoot, timeoutMs });
    if (result.code !== 0) {
      throw new Error(`tandem-agent ${args.join(' ')} failed (exit ${result.code}):\n${(result.stderr || result.stdout).trim()}`);
    }
    return { stdout: result.stdout, ms: result.ms };
  }

  async init(site = 'bench'): Promise<void> {
    await this.cli(['init', '--site', site]);
  }

  /** Addresses the running agent wrote to DATA/run.json. */
  get addresses(): { api: string; nbd: string; link: string | null } {
    if (!this.info) throw new Error('agent not running');
    return { api: this.info.apiAddress, nbd: this.info.nbdAddress ?? '', link: this.info.linkAddress ?? null };
  }

  /** Starts `run` (again); `extraArgs` like `--tls` are added to its command line. */
  async start(timeoutMs = 60_000, extraArgs: string[] = []): Promise<void> {
    const runJson = path.join(this.dataDir, 'run.json');
    fs.rmSync(runJson, { force: true });
    // TANDEM_BENCH_AGENT_NODE_ARGS: node options for the agents only (e.g. `--cpu-prof --cpu-prof-dir=DIR`).
    const nodeArgs = (process.env.TANDEM_BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const args = [...nodeArgs, this.bin, 'run', '--data', this.dataDir, '--api', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--link', '127.0.0.1:0', ...extraArgs];
    this.server = startServer(process.execPath, args, this.logFile, this.repoRoot);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.server.child.exitCode !== null) {
        throw new Error(`tandem-agent run exited (code ${this.server.child.exitCode}):\n${tailLog(this.server.log)}`);
      }
      if (fs.existsSync(runJson)) {
        try {
          this.info = JSON.parse(fs.readFileSync(runJson, 'utf8')) as RunInfo;
          if (this.info.nbdAddress) return;
        } catch {
          // half-written: read again
        }
      }
      await sleep(100);
    }
    throw new Error(`tandem-agent did not write ${runJson} within ${timeoutMs} ms:\n${tailLog(this.server.log)}`);
  }

  /** The agent's stdout/stderr (its pino log). */
  get logFile(): string {
    return path.join(this.logDir, 'tandem-agent.log');
  }

  get pid(): number | null {
    return this.server?.child.pid ?? null;
  }

  private nbdPort(): number {
    const match = /:(\d+)\/?$/.exec(this.info?.nbdAddress ?? '');
    if (!match) throw new Error(`cannot read the agent's NBD address ${this.info?.nbdAddress}`);
    return Number(match[1]);
  }

  /** The NBD port (after start). */
  get nbdPortNumber(): number {
    return this.nbdPort();
  }

  endpoint(volume: string): Endpoint {
    const pool = path.join(this.dataDir, 'pool');
    return {
      name: 'tandem',
      uri: nbdUri(this.nbdPort(), volume),
      pid: this.pid ?? undefined,
      dataFiles: () => fs.readdirSync(pool).filter((f) => f.endsWith('.dat')).map((f) => path.join(pool, f)),
      stop: async () => {},
    };
  }

  async createVolume(name: string, size: string): Promise<void> {
    await this.cli(['volume', 'create', name, size, '--json']);
  }

  async deleteVolume(name: string): Promise<void> {
    await this.cli(['volume', 'delete', name, '--json']);
  }

  /** The admin API client (mutual TLS with the data dir's admin certificate). */
  async api(): Promise<ApiClient> {
    if (!this.info) throw new Error('agent not running');
    if (!this.apiClient) {
      this.apiClient = new ApiClient(this.info.apiAddress, await loadCredentials(this.dataDir));
    }
    return this.apiClient;
  }

  async stop(): Promise<void> {
    this.apiClient?.close();
    this.apiClient = null;
    if (this.server) await stopServer(this.server, 10_000);
    this.server = null;
  }
}
