import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * Every process the benchmark starts goes through here, so all of them die
 * with it: at normal end, on error, on Ctrl-C / SIGTERM and at process exit.
 */
const live = new Set<ChildProcess>();

export interface Server {
  child: ChildProcess;
  log: string;
  exited: Promise<number | null>;
}

/** Starts a long-running process with stdout+stderr going to `log`. */
export function startServer(command: string, args: string[], log: string, cwd?: string): Server {
  const fd = fs.openSync(log, 'a');
  const child = spawn(command, args, { stdio: ['ignore', fd, fd], cwd });
  fs.closeSync(fd);
  live.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    });
    child.once('error', () => {
      live.delete(child);
      resolve(null);
    });
  });
  return { child, log, exited };
}

/** Stops a server: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopServer(server: Server, graceMs = 3000): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), graceMs);
  await server.exited;
  clearTimeout(timer);
}

export function tailLog(log: string, lines = 15): string {
  try {
    return fs.readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion (tracked, so Ctrl-C kills it too). */
export function run(command: string, args: string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd });
    live.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = options.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs)
      : undefined;
    child.once('error', (error) => {
      live.delete(child);
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      live.delete(child);
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - started,
      });
    });
  });
}

/** Kills every tracked process at once (synchronous; for exit paths). */
export function killAllNow(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

let cleanup: (() => Promise<void>) | null = null;

/** Installs exit and signal hooks; `onSignal` runs the orderly teardown first. */
export function installExitHooks(teardown: () => Promise<void>): void {
  cleanup = teardown;
  process.once('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping servers…`);
      const done = cleanup ? cleanup() : Promise.resolve();
      const force = setTimeout(() => process.exit(130), 5000);
      void done.finally(() => {
        clearTimeout(force);
        process.exit(130);
      });
    });
  }
}

/** CPU time (user + system) a process has used so far, ms; null when it is gone or not Linux. */
export function processCpuMs(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / clockTicksPerSecond;
  } catch {
    return null;
  }
}

/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const clockTicksPerSecond = 100;
