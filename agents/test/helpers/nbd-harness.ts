import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { NbdServer, type NbdServerOptions } from '../../src/nbd/server.ts';
import { StorageEngine } from '../../src/storage/engine.ts';
import { initDataDir } from '../../src/storage/init.ts';

/** A real storage engine in a temporary data dir, served by an NbdServer on TCP and a Unix socket. */
export interface NbdHarness {
  dir: string;
  engine: StorageEngine;
  server: NbdServer;
  host: string;
  port: number;
  socketPath: string;
  logger: Logger;
  /** nbd://host:port/name */
  uri(name: string): string;
  /** nbd+unix:///name?socket=… */
  unixUri(name: string): string;
  close(): Promise<void>;
}

export async function startNbdHarness(
  options: { trackSize?: number; server?: Partial<Omit<NbdServerOptions, 'exports' | 'logger'>> } = {},
): Promise<NbdHarness> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tandem-nbd-'));
  const dataDir = path.join(dir, 'data');
  await initDataDir(dataDir, { site: 'nbd-test', trackSize: options.trackSize ?? 64 * 1024 });
  const engine = await StorageEngine.open(dataDir);
  // NBD_TEST_LOG=debug shows the server's view when a test fails.
  const logger = pino(
    { level: process.env.NBD_TEST_LOG ?? 'silent' },
    pino.destination({ dest: process.env.NBD_TEST_LOG_FILE ?? 2, sync: true }),
  );
  const server = new NbdServer({ exports: engine.exports, logger, ...options.server });
  const { host, port } = await server.listenTcp('127.0.0.1', 0);
  const socketPath = path.join(dir, 'nbd.sock');
  await server.listenUnix(socketPath);
  return {
    dir,
    engine,
    server,
    host,
    port,
    socketPath,
    logger,
    uri: (name) => `nbd://${host}:${port}/${name}`,
    unixUri: (name) => `nbd+unix:///${name}?socket=${socketPath}`,
    async close() {
      await server.close();
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(command: string, args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(Object.assign(error, { stdout, stderr }));
        return;
      }
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

/** Runs a command and throws with its output unless it exits 0. */
export async function runOk(command: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const result = await run(command, args, timeoutMs);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

/** Runs qemu-io commands on an NBD URI; throws on failure (qemu-io exits 0 even when a pattern check fails, so its words are read too). */
export async function qemuIo(uri: string, ...commands: string[]): Promise<string> {
  const args = ['-f', 'raw'];
  for (const command of commands) args.push('-c', command);
  args.push(uri);
  const result = await run('qemu-io', args);
  if (result.code !== 0 || /Pattern verification failed|failed|error/i.test(result.stdout + result.stderr)) {
    throw new Error(`qemu-io ${commands.join(' ; ')} on ${uri}: exit ${result.code}\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

export const MiB = 1024 * 1024;
