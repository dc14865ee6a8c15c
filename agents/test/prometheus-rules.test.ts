import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCommand } from './helpers/run-command.ts';

/**
 * The example alerting rules shipped in packaging/prometheus: promtool
 * accepts them, their unit tests pass (`promtool test rules`), and every
 * tandem_ metric they use is one the agent exports (metrics/*.ts).
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const rulesDir = path.join(repoRoot, 'packaging/prometheus');
const rulesFile = path.join(rulesDir, 'tandem-alerts.rules.yml');

describe('example Prometheus alerting rules', () => {
  it('pass promtool check rules', async () => {
    const result = await runCommand('promtool', ['check', 'rules', rulesFile]);
    expect(result.code, result.out).toBe(0);
    expect(result.out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('pass their promtool unit tests', async () => {
    const result = await runCommand('promtool', ['test', 'rules', path.join(rulesDir, 'tandem-alerts.test.yml')]);
    expect(result.code, result.out).toBe(0);
  });

  it('use only metric names the agent exports', async () => {
    const rules = await readFile(rulesFile, 'utf8');
    const used = new Set([...rules.matchAll(/\btandem_[a-z_]+/g)].map((match) => match[0]));
    expect(used.size).toBeGreaterThan(5);
    const metricsDir = path.join(repoRoot, 'agents/src/metrics');
    const sources = await Promise.all((await readdir(metricsDir)).filter((name) => name.endsWith('.ts')).map((name) => readFile(path.join(metricsDir, name), 'utf8')));
    const exported = new Set(sources.flatMap((text) => [...text.matchAll(/'(tandem_[a-z_]+)'/g)].map((match) => match[1])));
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
  });
});
