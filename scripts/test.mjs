#!/usr/bin/env node
// `npm test`: every suite of the project, one after another (2 cores are
// shared), each with its normal output and a JSON report to a temp file.
// Ends with ONE plain line `N passed, N failed, N skipped` summed over all
// suites; exits non-zero when anything failed or a suite crashed. A suite
// that leaves no JSON report counts as a failure, never as zero tests.
//
//   npm test                 all suites
//   npm test -- agents e2e   only the named suites
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

/** @type {{name: string, kind: 'vitest' | 'playwright', config: string, root?: string, needsBuild?: boolean}[]} */
const suites = [
  { name: 'contract', kind: 'vitest', config: 'contract/vitest.config.ts', root: 'contract' },
  { name: 'agents', kind: 'vitest', config: 'agents/vitest.config.ts', root: 'agents' },
  { name: 'console-backend', kind: 'vitest', config: 'main/vitest.config.ts', root: 'main' },
  { name: 'console-renderer', kind: 'vitest', config: 'renderer/vitest.config.ts', root: 'renderer' },
  { name: 'e2e', kind: 'playwright', config: 'e2e/playwright.config.ts', needsBuild: true },
];

const wanted = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const unknown = wanted.filter((name) => !suites.some((suite) => suite.name === name));
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; suites are ${suites.map((suite) => suite.name).join(', ')}`);
  process.exit(2);
}
const selected = wanted.length > 0 ? suites.filter((suite) => wanted.includes(suite.name)) : suites;

let current;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    current?.kill(signal);
    process.exit(130);
  });
}

function run(command, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
    current = child;
    child.on('error', (error) => {
      console.error(`cannot start ${command}: ${error.message}`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function readJson(file) {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The first lines of a failure's message, without colour codes: enough to tell which assertion failed. */
function firstLines(text, lines = 6) {
  return String(text ?? '')
    // eslint-disable-next-line no-control-regex
    .replace(/\u001b\[[0-9;]*m/g, '')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.includes('node_modules') && !line.includes('(<anonymous>)'))
    .slice(0, lines)
    .join('\n      ');
}

/**
 * Counts from vitest's JSON report (jest format), and each failure's file, name and first lines. A file that failed to
 * load has no failed test but fails.
 */
function vitestCounts(report) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const failures = [];
  for (const file of report.testResults ?? []) {
    const tests = file.assertionResults ?? [];
    const where = path.relative(root, file.name ?? '');
    for (const test of tests) {
      if (test.status === 'passed') passed++;
      else if (test.status === 'failed') {
        failed++;
        failures.push({ where, name: test.fullName ?? test.title, message: firstLines(test.failureMessages?.[0]) });
      } else skipped++;
    }
    if (file.status === 'failed' && !tests.some((test) => test.status === 'failed')) {
      failed++;
      failures.push({ where, name: '(the file failed outside its tests)', message: firstLines(file.message) });
    }
  }
  return { passed, failed, skipped, failures };
}

/** Counts from Playwright's JSON report; errors outside tests (global setup) count as failures. */
function playwrightCounts(report) {
  const stats = report.stats ?? {};
  const failures = [];
  const walk = (suite, titles) => {
    for (const spec of suite.specs ?? []) {
      for (const test of spec.tests ?? []) {
        if (test.status !== 'unexpected') continue;
        const error = test.results?.at(-1)?.error?.message;
        failures.push({ where: spec.file ?? suite.file ?? '', name: [...titles, spec.title].join(' › '), message: firstLines(error) });
      }
    }
    for (const child of suite.suites ?? []) walk(child, suite.title && !suite.title.endsWith('.ts') ? [...titles, suite.title] : titles);
  };
  for (const suite of report.suites ?? []) walk(suite, []);
  for (const error of report.errors ?? []) failures.push({ where: '', name: '(outside the tests)', message: firstLines(error.message) });
  return {
    passed: (stats.expected ?? 0) + (stats.flaky ?? 0),
    failed: (stats.unexpected ?? 0) + (report.errors?.length ?? 0),
    skipped: stats.skipped ?? 0,
    failures,
  };
}

const temp = await mkdtemp(path.join(os.tmpdir(), 'tandem-test-'));
const results = [];
let built = false;

for (const suite of selected) {
  console.log(`\n━━ ${suite.name} ━━`);
  if (suite.needsBuild && !built) {
    const buildCode = await run(bin('electron-vite'), ['build']);
    built = true;
    if (buildCode !== 0) {
      results.push({ name: 'build', passed: 0, failed: 1, skipped: 0, note: `electron-vite build exited ${buildCode}` });
      continue;
    }
  }
  const report = path.join(temp, `${suite.name}.json`);
  let code;
  if (suite.kind === 'vitest') {
    code = await run(bin('vitest'), [
      'run',
      '--config', path.join(root, suite.config),
      '--root', path.join(root, suite.root ?? '.'),
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
    ]);
  } else {
    code = await run(bin('playwright'), ['test', '--config', path.join(root, suite.config), '--reporter=list,json'], {
      PLAYWRIGHT_JSON_OUTPUT_NAME: report,
    });
  }
  const json = await readJson(report);
  if (!json) {
    results.push({ name: suite.name, passed: 0, failed: 1, skipped: 0, note: `crashed (exit ${code}, no JSON report)` });
    continue;
  }
  const counts = suite.kind === 'vitest' ? vitestCounts(json) : playwrightCounts(json);
  if (code !== 0 && counts.failed === 0) {
    counts.failed = 1;
    results.push({ name: suite.name, ...counts, note: `exited ${code} with no failed test: counted as one failure` });
  } else {
    results.push({ name: suite.name, ...counts });
  }
}

await rm(temp, { recursive: true, force: true });

// The failures again, at the end where a CI log's tail shows them.
const failures = results.flatMap((result) => (result.failures ?? []).map((failure) => ({ suite: result.name, ...failure })));
if (failures.length > 0) {
  console.log('\n━━ failures ━━');
  for (const failure of failures) {
    console.log(`✗ ${failure.suite}: ${failure.where ? `${failure.where} › ` : ''}${failure.name}`);
    if (failure.message) console.log(`      ${failure.message}`);
  }
}

console.log('\n━━ summary ━━');
for (const result of results) {
  console.log(`${result.name.padEnd(18)} ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped${result.note ? `  (${result.note})` : ''}`);
}
const total = results.reduce((sum, result) => ({ passed: sum.passed + result.passed, failed: sum.failed + result.failed, skipped: sum.skipped + result.skipped }), {
  passed: 0,
  failed: 0,
  skipped: 0,
});
console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(total.failed > 0 || results.length === 0 ? 1 : 0);
