/**
 * The agent as installed on a host: the systemd unit passes
 * `systemd-analyze verify` without a warning, and the npm tarball
 * (scripts/package-agent.mjs) holds what the unit's ExecStart needs and runs
 * from a clean directory with no sources and no TypeScript loader beside it.
 * The full `npm install` of the tarball (native dependencies compiled) is
 * `npm run test:install`.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';

const execFileAsync = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const unitFile = path.join(repoRoot, 'packaging/systemd/tandem-agent.service');
const systemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe.skipIf(!systemdAnalyze)('the systemd unit', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-unit-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** Verifies a unit text under our unit's name; returns what systemd-analyze said about it. */
  async function verify(text: string): Promise<string[]> {
    const file = path.join(dir, 'tandem-agent.service');
    // ExecStart must name an executable that exists here: the launcher the package installs as /usr/local/bin/tandem-agent.
    await writeFile(file, text.replaceAll('/usr/local/bin/tandem-agent', path.join(repoRoot, 'agents/bin/tandem-agent.cjs')));
    const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    const said = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.includes('tandem-agent'));
    if (result.status !== 0) said.push(`exit ${result.status}`);
    return said;
  }

  it('passes systemd-analyze verify without a warning', async () => {
    expect(await verify(await readFile(unitFile, 'utf8'))).toEqual([]);
  });

  it('is Type=notify with a watchdog, a reload, a restart policy and the hardening options', async () => {
    const text = await readFile(unitFile, 'utf8');
    const settings = new Map<string, string[]>();
    for (const line of text.split('\n')) {
      const match = /^(\w+)=(.*)$/.exec(line);
      if (match) settings.set(match[1], [...(settings.get(match[1]) ?? []), match[2]]);
    }
    const one = (key: string) => settings.get(key)?.join(' ');
    expect(one('Type')).toBe('notify');
    expect(one('NotifyAccess')).toBe('main');
    expect(one('WatchdogSec')).toMatch(/^\d+s$/);
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('Restart')).toBe('on-failure');
    expect(one('User')).toBe('tandem');
    for (const [key, value] of Object.entries({
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      CapabilityBoundingSet: '',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
      ReadWritePaths: '/var/lib/tandem-agent',
    })) {
      expect(one(key), key).toBe(value);
    }
    expect(settings.get('SystemCallFilter')).toContain('@system-service');
  });

  it('fails on a unit systemd would only warn about (the check is not blind)', async () => {
    const broken = (await readFile(unitFile, 'utf8')).replace('Type=notify', 'Type=notfy').replace('NotifyAccess=main', 'NotifyAccess=main\nWatchdogSecs=20s');
    const said = await verify(broken);
    expect(said.join('\n')).toMatch(/Failed to parse service type/);
    expect(said.join('\n')).toMatch(/Unknown key 'WatchdogSecs'/);
  });
});

describe('the npm tarball (scripts/package-agent.mjs)', () => {
  let dir = '';
  let tarball = '';
  let agent: AgentProcess | null = null;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-package-'));
    const { stdout } = await execFileAsync(process.execPath, [path.join(repoRoot, 'scripts/package-agent.mjs'), '--out', dir], { timeout: 120_000 });
    tarball = stdout.trim();
  }, 150_000);
  afterAll(async () => {
    await agent?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('holds the build, the launcher, the unit, its installer and the addon sources; no sources, no tsx', async () => {
    const { stdout } = await execFileAsync('tar', ['tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean).map((file) => file.replace(/^package\//, ''));
    for (const file of ['bin/tandem-agent.cjs', 'dist/tandem-agent.mjs', 'dist/build-stamp.json', 'native/binding.gyp', 'native/nowait-io.c', 'native/sd-notify.c', 'native/install.cjs', 'systemd/tandem-agent.service', 'systemd/tandem-agent.default', 'prometheus/tandem-alerts.rules.yml', 'install-agent.sh', 'package.json']) {
      expect(files, file).toContain(file);
    }
    expect(files.filter((file) => /^(src|test|bench)\/|\.ts$/.test(file))).toEqual([]);
    const { stdout: manifestText } = await execFileAsync('tar', ['xzOf', tarball, 'package/package.json']);
    const manifest = JSON.parse(manifestText) as { bin: Record<string, string>; dependencies: Record<string, string>; scripts: Record<string, string> };
    expect(manifest.bin).toEqual({ 'tandem-agent': 'bin/tandem-agent.cjs' });
    // Only packages with native code stay dependencies: no tsx, no workspace package, no pure-JS library.
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['@node-rs/crc32', '@node-rs/xxhash', 'better-sqlite3']);
    expect(manifest.scripts.install).toBe('node native/install.cjs');
  });

  it('runs from a clean directory: --version, init, run until ready, volume commands', async () => {
    const root = path.join(dir, 'host');
    await mkdir(root);
    // -m: the files get the time of unpacking, as npm's install gives them (newer than the build).
    await execFileAsync('tar', ['xzmf', tarball, '-C', root]);
    const installed = path.join(root, 'package');
    // The native dependencies as npm would install them (`npm run test:install` does the real install).
    await symlink(path.join(repoRoot, 'node_modules'), path.join(installed, 'node_modules'), 'dir');
    const bin = path.join(installed, 'bin/tandem-agent.cjs');
    // The build must run even when the clone's sources are newer: none are beside it.
    const env = { ...process.env, TANDEM_AGENT_FROM: '' };
    const started = performance.now();
    const { stdout: version } = await execFileAsync(process.execPath, [bin, '--version'], { env });
    expect(version.trim()).toBe(JSON.parse(await readFile(path.join(repoRoot, 'agents/package.json'), 'utf8')).version);
    expect(performance.now() - started).toBeLessThan(5_000);
    const dataDir = path.join(root, 'data');
    await execFileAsync(process.execPath, [bin, 'init', '--data', dataDir, '--site', 'packaged'], { env });
    agent = await startAgentProcess({ dataDir, bin });
    await execFileAsync(process.execPath, [bin, 'volume', 'create', 'v1', '64M', '--data', dataDir], { env });
    const { stdout: list } = await execFileAsync(process.execPath, [bin, 'volume', 'list', '--data', dataDir, '--json'], { env });
    expect((JSON.parse(list) as { volumes: Array<{ name: string }> }).volumes.map((volume) => volume.name)).toEqual(['v1']);
  });

  it('refuses to start under systemd Type=notify without the native addon, saying why', async () => {
    const bin = path.join(dir, 'host/package/bin/tandem-agent.cjs');
    const result = spawnSync(process.execPath, [bin, 'run', '--data', path.join(dir, 'host/data'), '--api', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--link', '127.0.0.1:0'], {
      env: { ...process.env, NOTIFY_SOCKET: path.join(dir, 'notify.sock') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^error: not-supported: NOTIFY_SOCKET is set \(systemd Type=notify\) but the agent's native addon is missing/m);
    expect(result.stdout).not.toMatch(/^ready$/m);
  });
});
