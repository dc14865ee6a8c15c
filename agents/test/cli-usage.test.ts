/**
 * CLI argument handling without a running agent: usage errors exit 2 with a
 * clear message, refused operations exit 1 with the problem code, `init`
 * lays out a data dir with its TLS material.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initTempDataDir, makeTempDir, runCli } from './helpers/agent-process.ts';

let scratch: string;

beforeAll(async () => {
  scratch = await makeTempDir('tandem-cli-usage-');
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe.concurrent('usage errors exit 2', () => {
  it.each([
    [[], 'Usage: tandem-agent'],
    [['frobnicate'], "error: bad-request: unknown command 'frobnicate'"],
    [['volume', 'create', 'v', '--data', '/nonexistent'], "missing required argument 'size'"],
    [['volume', 'create', 'v', '12X', '--data', '/nonexistent'], "'12X' is not a size"],
    [['volume', 'list'], "required option '--data <dir>' not specified"],
    [['init', '--data', '/nonexistent/x'], "required option '--site <name>' not specified"],
    [['init', '--data', '/nonexistent/x', '--site', 'bad site'], "'bad site' is not a site name"],
    [['init', '--data', '/nonexistent/x', '--site', 's', '--track-size', '3K'], 'power of two from 4K to 1M'],
    [['init', '--data', '/nonexistent/x', '--site', 's', '--track-size', '2M'], 'power of two from 4K to 1M'],
    [['run', '--data', '/nonexistent/x', '--api', 'nonsense'], "'nonsense' is not HOST:PORT"],
    [['run', '--data', '/nonexistent/x', '--nbd', '1.2.3.4:99999'], 'is not HOST:PORT'],
    [['events', '--data', '/nonexistent/x', '--limit', 'many'], "'many' is not a whole number"],
    [['volume', 'list', '--data', '/x', '--bogus'], "unknown option '--bogus'"],
  ])('tandem-agent %j', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
  });

  it('exits 0 for --help', async () => {
    const result = await runCli(['volume', 'create', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: tandem-agent volume create [options] <name> <size>');
  });
});

describe('init', () => {
  it('creates agent.json, the catalog and TLS files with private keys readable only by the owner', async () => {
    const dataDir = path.join(scratch, 'init-ok');
    const result = await runCli(['init', '--data', dataDir, '--site', 'east', '--track-size', '16K', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { site: string; trackSize: number; certificateFingerprint: string };
    expect(report).toMatchObject({ site: 'east', trackSize: 16384 });
    expect(report.certificateFingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const identity = JSON.parse(await readFile(path.join(dataDir, 'agent.json'), 'utf8')) as { trackSize: number };
    expect(identity.trackSize).toBe(16384);
    for (const key of ['ca-key.pem', 'server-key.pem', 'admin-key.pem']) {
      expect((await stat(path.join(dataDir, 'tls', key))).mode & 0o777, key).toBe(0o600);
    }
    for (const certificate of ['ca.pem', 'server.pem', 'admin.pem']) {
      expect(await readFile(path.join(dataDir, 'tls', certificate), 'utf8')).toContain('BEGIN CERTIFICATE');
    }
  });

  it('refuses to initialize a data dir twice (exit 1, already-exists)', async () => {
    const dataDir = path.join(scratch, 'init-twice');
    expect((await runCli(['init', '--data', dataDir, '--site', 'a'])).code).toBe(0);
    const again = await runCli(['init', '--data', dataDir, '--site', 'b']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('error: already-exists:');
  });
});

describe('refused operations exit 1 with the problem code', () => {
  it('run, token and check on a dir that is not a data dir', async () => {
    const notData = path.join(scratch, 'empty');
    for (const args of [
      ['run', '--data', notData, '--api', '127.0.0.1:0', '--nbd', '127.0.0.1:0'],
      ['token', '--data', notData],
      ['check', '--data', notData],
    ]) {
      const result = await runCli(args);
      expect(result.code, args[0]).toBe(1);
      expect(result.stderr, args[0]).toContain('error: not-found:');
      expect(result.stderr, args[0]).toContain('not an agent data dir');
    }
  });

  it('admin commands when no agent runs on the data dir', async () => {
    const dataDir = await initTempDataDir();
    try {
      const result = await runCli(['volume', 'list', '--data', dataDir]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^error: agent-unreachable: no agent is running on .*tandem-agent run/);
      const json = await runCli(['pool', 'show', '--data', dataDir, '--json']);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stderr)).toMatchObject({ problem: 'agent-unreachable' });
    } finally {
      await rm(path.dirname(dataDir), { recursive: true, force: true });
    }
  });
});

describe('check', () => {
  it('reports a fresh data dir clean (exit 0)', async () => {
    const dataDir = await initTempDataDir();
    try {
      const human = await runCli(['check', '--data', dataDir]);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toMatch(/^clean: 0 volume\(s\)/);
      const json = await runCli(['check', '--data', dataDir, '--json']);
      expect(JSON.parse(json.stdout)).toMatchObject({ clean: true, problems: [] });
    } finally {
      await rm(path.dirname(dataDir), { recursive: true, force: true });
    }
  });
});
