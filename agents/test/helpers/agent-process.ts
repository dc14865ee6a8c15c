/**
 * Real `tandem-agent` processes for tests: a temp data dir made by the CLI's
 * `init`, a daemon on ephemeral loopback ports, an admin API client, NBD
 * URIs, and kill/restart/stop. Every process started here is SIGKILLed if
 * the test process exits without stopping it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunInfo } from '../../src/data-dir.ts';
import { AgentApiClient, connectHost } from '../../src/cli/api-client.ts';
import { loadAdminCredentials } from '../../src/tls/files.ts';
import { agentCliJson } from './run-command.ts';

/** The CLI entry, run with the same Node as the tests. */
export const agentBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/tandem-agent.cjs');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `tandem-agent ARGS` to completion. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [agentBin, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs a CLI command that must succeed and returns its `--json` output parsed. */
export async function runCliJson<T = unknown>(args: string[]): Promise<T> {
  const result = await runCli([...args, '--json']);
  if (result.code !== 0) throw new Error(`tandem-agent ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** Makes an empty temp dir for a data dir. */
export function makeTempDir(prefix = 'tandem-agent-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** `tandem-agent init` into a new temp dir; returns the data dir. */
export async function initTempDataDir(options: { site?: string; trackSize?: string } = {}): Promise<string> {
  const dataDir = path.join(await makeTempDir(), 'data');
  const args = ['init', '--data', dataDir, '--site', options.site ?? 'test-site'];
  if (options.trackSize) args.push('--track-size', options.trackSize);
  const result = await runCli(args);
  if (result.code !== 0) {
    await rm(path.dirname(dataDir), { recursive: true, force: true });
    throw new Error(`tandem-agent init failed (${result.code}): ${result.stderr}`);
  }
  return dataDir;
}

export interface StartAgentOptions {
  /** Site name for `init` (default `test-site`). */
  site?: string;
  /** Track size for `init`, like `64K`. */
  trackSize?: string;
  /** Use this already initialized data dir instead of a new temp one (it is then not deleted by stop()). */
  dataDir?: string;
  /** Also serve NBD on a Unix socket in the data dir's parent. */
  nbdSocket?: boolean;
  /** Extra environment for the daemon (UV_THREADPOOL_SIZE=16 and TANDEM_LOG_LEVEL=info are set). */
  env?: NodeJS.ProcessEnv;
  /** Milliseconds to wait for `ready` (default 60 s). */
  startTimeoutMs?: number;
  /** More `run` options, like `--tls`. */
  extraArgs?: string[];
  /** Another launcher than the clone's agents/bin/tandem-agent.cjs (an unpacked package). */
  bin?: string;
}

export interface AgentProcess {
  readonly dataDir: string;
  readonly pid: number;
  readonly runInfo: RunInfo;
  /** Admin client (mutual TLS with DATA/tls/admin.pem) of the current process; replaced on restart. */
  readonly api: AgentApiClient;
  /** `host:port` of the control API. */
  readonly apiAddress: string;
  readonly nbdHost: string;
  readonly nbdPort: number;
  /** `nbd://127.0.0.1:PORT`; append `/VOLUME`. */
  readonly nbdUriBase: string;
  /** Unix socket path when started with `nbdSocket: true`. */
  readonly nbdSocket: string | null;
  nbdUri(volume: string): string;
  /** What the current process wrote so far (stderr holds pino JSON logs; the tail is kept). */
  readonly stdout: string;
  readonly stderr: string;
  /** Sends a signal (default SIGKILL) and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Starts the agent again on the same data dir (stopping it first with SIGTERM if it runs). `samePorts` reuses the ports. */
  restart(options?: { samePorts?: boolean; env?: NodeJS.ProcessEnv }): Promise<void>;
  /** SIGTERM, wait for a clean exit (throws if it was not clean), then delete the temp dir. Idempotent. */
  stop(options?: { keepDataDir?: boolean }): Promise<void>;
  /** `tandem-agent ARGS --data DATA_DIR`. */
  cli(args: string[]): Promise<CliResult>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

const logTail = 256 * 1024;

interface Running {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: { stdout: string; stderr: string };
  runInfo: RunInfo;
  api: AgentApiClient;
}

async function spawnAgent(
  dataDir: string,
  ports: { api: number; nbd: number; link: number },
  options: StartAgentOptions,
  nbdSocket: string | null,
): Promise<Running> {
  const args = ['run', '--data', dataDir, '--api', `127.0.0.1:${ports.api}`, '--nbd', `127.0.0.1:${ports.nbd}`, '--link', `127.0.0.1:${ports.link}`];
  if (nbdSocket) args.push('--nbd-socket', nbdSocket);
  if (options.extraArgs) args.push(...options.extraArgs);
  const child = spawn(process.execPath, [options.bin ?? agentBin, ...args], {
    env: { UV_THREADPOOL_SIZE: '16', TANDEM_LOG_LEVEL: 'info', ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const output = { stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => (output.stdout = (output.stdout + chunk).slice(-logTail)));
  child.stderr!.on('data', (chunk: Buffer) => (output.stderr = (output.stderr + chunk).slice(-logTail)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tandem-agent run did not get ready in time:\n${output.stderr.slice(-4000)}`));
    }, options.startTimeoutMs ?? 60_000);
    const onData = () => {
      if (/^ready$/m.test(output.stdout)) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`tandem-agent run exited (${code ?? signal}) before ready:\n${output.stderr.slice(-4000)}`));
    });
  });
  const runInfo = JSON.parse(await readFile(path.join(dataDir, 'run.json'), 'utf8')) as RunInfo;
  const api = new AgentApiClient(runInfo.apiAddress, await loadAdminCredentials(dataDir));
  return { child, exited, output, runInfo, api };
}

/** Inits a temp data dir (unless `dataDir` is given) and runs a real agent on ephemeral loopback ports. */
export async function startAgentProcess(options: StartAgentOptions = {}): Promise<AgentProcess> {
  const ownsDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await initTempDataDir(options));
  const nbdSocket = options.nbdSocket ? path.join(path.dirname(dataDir), 'nbd.sock') : null;
  let running: Running | null;
  try {
    running = await spawnAgent(dataDir, { api: 0, nbd: 0, link: 0 }, options, nbdSocket);
  } catch (error) {
    if (ownsDir) await rm(path.dirname(dataDir), { recursive: true, force: true });
    throw error;
  }
  let last = running;
  let stopped = false;

  const current = (): Running => {
    if (!running) throw new Error('the agent is not running (killed or stopped); call restart()');
    return running;
  };
  const nbdAddress = () => connectHost(last.runInfo.nbdAddress ?? '127.0.0.1:0');

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const target = running;
    if (!target) return { code: null, signal: null };
    running = null;
    target.api.close();
    target.child.kill(signal);
    return target.exited;
  };

  const agent: AgentProcess = {
    dataDir,
    get pid() {
      return current().child.pid!;
    },
    get runInfo() {
      return last.runInfo;
    },
    get api() {
      return current().api;
    },
    get apiAddress() {
      return last.runInfo.apiAddress;
    },
    get nbdHost() {
      return nbdAddress().host;
    },
    get nbdPort() {
      return nbdAddress().port;
    },
    get nbdUriBase() {
      return `nbd://${last.runInfo.nbdAddress}`;
    },
    nbdSocket,
    nbdUri(volume: string) {
      return `nbd://${last.runInfo.nbdAddress}/${volume}`;
    },
    get stdout() {
      return last.output.stdout;
    },
    get stderr() {
      return last.output.stderr;
    },
    kill,
    async restart(restartOptions = {}) {
      if (running) {
        const result = await kill('SIGTERM');
        if (result.code !== 0) throw new Error(`agent did not stop cleanly before restart: ${result.code ?? result.signal}`);
      }
      const ports = restartOptions.samePorts
        ? {
            api: connectHost(last.runInfo.apiAddress).port,
            nbd: nbdAddress().port,
            link: last.runInfo.linkAddress ? connectHost(last.runInfo.linkAddress).port : 0,
          }
        : { api: 0, nbd: 0, link: 0 };
      // New environment from now on (e.g. a clock set right).
      const spawnOptions = restartOptions.env ? Object.assign(options, { env: { ...options.env, ...restartOptions.env } }) : options;
      running = await spawnAgent(dataDir, ports, spawnOptions, nbdSocket);
      last = running;
    },
    async stop(stopOptions = {}) {
      if (stopped) return;
      stopped = true;
      let failure: Error | null = null;
      if (running) {
        const result = await kill('SIGTERM');
        if (result.code !== 0) failure = new Error(`agent exited ${result.code ?? result.signal} on SIGTERM:\n${last.output.stderr.slice(-4000)}`);
      }
      if (ownsDir && !stopOptions.keepDataDir) await rm(path.dirname(dataDir), { recursive: true, force: true });
      if (failure) throw failure;
    },
    cli(args: string[]) {
      return runCli([...args, '--data', dataDir]);
    },
  };
  return agent;
}

/** Pairs `from` with `to` through the CLI: a pairing token from `to`, then `pair --with` at `from`. */
export async function pairAgents(from: AgentProcess, to: AgentProcess): Promise<void> {
  const token = await agentCliJson<{ token: string }>(to, ['token']);
  await agentCliJson(from, ['pair', '--with', to.apiAddress, '--token', token.token]);
}

/**
 * Agent processes (by default sites alpha and beta), each paired with every
 * later one in turn (pairAgents: alpha with beta, alpha with charlie, beta
 * with charlie, …). All are stopped again when a pairing fails.
 */
export async function startPairedAgents(
  agents: StartAgentOptions[] = [{ site: 'alpha' }, { site: 'beta' }],
): Promise<AgentProcess[]> {
  const started = await Promise.all(agents.map((options) => startAgentProcess(options)));
  try {
    for (const [index, from] of started.entries()) {
      for (const to of started.slice(index + 1)) await pairAgents(from, to);
    }
  } catch (error) {
    await Promise.allSettled(started.map((agent) => agent.stop()));
    throw error;
  }
  return started;
}
