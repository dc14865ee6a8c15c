/**
 * bin/tandem-agent.cjs chooses what runs: the build (dist/) while no source
 * it was made from changed since, the sources through tsx otherwise, never a
 * stale build. Tested on a copy of the real launcher in a small agent
 * directory of its own (a build and a source that each say which they are),
 * so the clone's own sources and build are never touched.
 */
import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = path.resolve(import.meta.dirname, '../..');

describe('the launcher (bin/tandem-agent.cjs)', () => {
  let dir = '';
  let agentDir = '';
  const run = (env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [path.join(agentDir, 'bin/tandem-agent.cjs'), 'which'], { env: { ...process.env, TANDEM_AGENT_FROM: '', ...env }, encoding: 'utf8', timeout: 60_000 });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-launcher-'));
    agentDir = path.join(dir, 'agents');
    await mkdir(path.join(agentDir, 'bin'), { recursive: true });
    await mkdir(path.join(agentDir, 'dist'));
    await mkdir(path.join(agentDir, 'src/cli'), { recursive: true });
    await cp(path.join(repoRoot, 'agents/bin/tandem-agent.cjs'), path.join(agentDir, 'bin/tandem-agent.cjs'));
    // tsx, for the sources.
    await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    await writeFile(path.join(agentDir, 'package.json'), '{"type":"module"}\n');
    const say = (what: string) => `export async function runCli(argv: string[]): Promise<void> { console.log('${what}', process.env.UV_THREADPOOL_SIZE, argv.join(' ')); }\n`;
    await writeFile(path.join(agentDir, 'src/cli/main.ts'), say('source'));
    await writeFile(path.join(agentDir, 'dist/tandem-agent.mjs'), say('build').replace(': string[]', '').replace(': Promise<void>', ''));
    const builtAt = Date.now();
    // The source was read by the build a minute after it was last written.
    await utimes(path.join(agentDir, 'src/cli/main.ts'), new Date(builtAt - 60_000), new Date(builtAt - 60_000));
    await writeFile(path.join(agentDir, 'dist/build-stamp.json'), JSON.stringify({ sourcesReadFrom: builtAt, sources: ['src/cli/main.ts'] }));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('runs the build while it is current, with the thread pool sized first', () => {
    const unset: NodeJS.ProcessEnv = { ...process.env, TANDEM_AGENT_FROM: '' };
    delete unset.UV_THREADPOOL_SIZE;
    const result = spawnSync(process.execPath, [path.join(agentDir, 'bin/tandem-agent.cjs'), 'which'], { env: unset, encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('build 16 which\n');
  });

  it('runs the sources once one changed after the build, and the build again when forced', async () => {
    const later = new Date(Date.now() + 1_000);
    await utimes(path.join(agentDir, 'src/cli/main.ts'), later, later);
    expect(run().stdout).toBe(`source ${process.env.UV_THREADPOOL_SIZE ?? '16'} which\n`);
    expect(run({ TANDEM_AGENT_FROM: 'build' }).stdout).toBe(`build ${process.env.UV_THREADPOOL_SIZE ?? '16'} which\n`);
  });

  it('runs the sources when forced, and refuses an unknown TANDEM_AGENT_FROM with bad-request', () => {
    expect(run({ TANDEM_AGENT_FROM: 'source' }).stdout).toBe(`source ${process.env.UV_THREADPOOL_SIZE ?? '16'} which\n`);
    const refused = run({ TANDEM_AGENT_FROM: 'newest' });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toBe('error: bad-request: TANDEM_AGENT_FROM must be "source" or "build", not "newest"\n');
  });
});
