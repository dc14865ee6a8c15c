// Running the console backend in plain Node (browser mode) and talking to
// its local API: used by `npm start` and e2e.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './agents.mjs';

/** Starts main/src/backend/serve.ts and resolves with `{url, token, stop()}` once it listens. */
export async function startConsoleBackend({ configDir, rendererDir = path.join(repoRoot, 'out/renderer'), port = 0, reconnectMaxMs, onLog }) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(repoRoot, 'main/src/backend/serve.ts'),
      '--config-dir',
      configDir,
      '--renderer-dir',
      rendererDir,
      '--port',
      String(port),
      ...(reconnectMaxMs ? ['--reconnect-max-ms', String(reconnectMaxMs)] : []),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stderr.on('data', (chunk) => onLog?.(chunk.toString()));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const endpoint = await new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error('the console backend did not start within 60 s')), 60_000);
    child.stdout.on('data', (chunk) => {
      buffer += chunk.toString();
      const line = buffer.split('\n')[0];
      if (buffer.includes('\n')) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line));
        } catch {
          reject(new Error(`the console backend printed ${line}`));
        }
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the console backend exited (${code ?? signal}) before listening`));
    });
  });
  return {
    ...endpoint,
    process: child,
    /** The address to open in a browser: the token rides in the fragment. */
    browserUrl: `${endpoint.url}/#token=${endpoint.token}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Calls the backend's JSON API; throws with the problem code and message on failure. */
export async function consoleApi(backend, method, route, body) {
  const response = await fetch(`${backend.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${backend.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!response.ok) throw new Error(`${method} ${route}: ${json?.problem ?? response.status}: ${json?.message ?? text}`);
  return json;
}
