// Starting and driving real `tandem-agent` processes: used by `npm start`
// (demo sites), the backend's integration tests and e2e. One place, so they
// all start agents the same way.
import { execFile, spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const agentBin = path.join(repoRoot, 'agents/bin/tandem-agent.cjs');

/** A TCP port nobody listens on right now (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs an agent CLI command and returns its stdout; a failure throws with the agent's own message. */
export async function agentCli(args, options = {}) {
  try {
    const { stdout } = await execFileAsync(process.execPath, [agentBin, ...args], { cwd: repoRoot, timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    throw new Error(`tandem-agent ${args.join(' ')} failed: ${(error.stderr || error.stdout || error.message).trim()}`);
  }
}

export async function isInitialized(dataDir) {
  try {
    await access(path.join(dataDir, 'agent.json'));
    return true;
  } catch {
    return false;
  }
}

/** `tandem-agent init` unless the data dir already holds an agent. */
export async function initAgent({ dataDir, site, trackSize }) {
  if (await isInitialized(dataDir)) return false;
  await agentCli(['init', '--data', dataDir, '--site', site, ...(trackSize ? ['--track-size', trackSize] : [])]);
  return true;
}

/** A one-time pairing token and the agent's certificate fingerprint. */
export async function pairingToken(dataDir) {
  return JSON.parse(await agentCli(['token', '--data', dataDir, '--json']));
}

/**
 * Starts `tandem-agent run` and resolves once it printed `ready`.
 * Returns the addresses and `stop()` (SIGTERM, then SIGKILL after 10 s).
 */
export async function startAgent({ dataDir, apiPort, nbdPort, linkPort, onOutput, env }) {
  const api = `127.0.0.1:${apiPort ?? (await freePort())}`;
  const nbd = `127.0.0.1:${nbdPort ?? (await freePort())}`;
  const link = `127.0.0.1:${linkPort ?? (await freePort())}`;
  const args = ['run', '--data', dataDir, '--api', api, '--nbd', nbd, '--link', link, '--log-level', 'warn'];
  const child = spawn(process.execPath, [agentBin, ...args], {
    cwd: repoRoot,
    // Extra environment, e.g. TANDEM_CLOCK_SKEW_MS for a site whose clock is set wrong (tests).
    env: env ? { ...process.env, ...env } : process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent in ${dataDir} did not become ready in 60 s:\n${output}`)), 60_000);
    const onData = (chunk) => {
      const text = chunk.toString();
      output += text;
      onOutput?.(text);
      if (/^ready$/m.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`agent in ${dataDir} exited (${code ?? signal}) before it was ready:\n${output}`));
    });
  });
  return {
    process: child,
    apiAddress: api,
    nbdAddress: nbd,
    linkAddress: link,
    dataDir,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
