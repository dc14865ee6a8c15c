// How fast the agent starts, from the build and from the sources (tsx):
// `--help`, a command against a running agent (`volume list`), and
// `run` until it prints `ready`; `node -e 0` as the floor. Minimum and
// median of N runs each (N from --runs, default 9): wall time, and the CPU
// time the process used (user + system), which a busy machine distorts less
// (from /usr/bin/time for commands, /proc/PID/stat at `ready`).
//
//   npm run bench:startup [-- --runs 15]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const bin = path.resolve(import.meta.dirname, '../bin/tandem-agent.cjs');
const at = process.argv.indexOf('--runs');
const runs = at > 0 ? Number(process.argv[at + 1]) : 9;
if (!Number.isInteger(runs) || runs < 1) {
  console.error('error: bad-request: --runs needs a positive whole number');
  process.exit(2);
}

const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const clockTicks = 100; // USER_HZ of /proc/PID/stat on Linux

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return `min ${sorted[0].toFixed(0).padStart(5)} ms, median ${sorted[Math.floor(sorted.length / 2)].toFixed(0).padStart(5)} ms`;
}

function summary(wall, cpu) {
  return `wall ${stats(wall)}${cpu.length ? `   cpu ${stats(cpu)}` : ''}`;
}

function timeCommand(args, env) {
  const wall = [];
  const cpu = [];
  const report = path.join(dir, 'time.txt');
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    if (timeBin) execFileSync(timeBin, ['-f', '%U %S', '-o', report, process.execPath, ...args], { env: { ...process.env, ...env }, stdio: 'ignore' });
    else execFileSync(process.execPath, args, { env: { ...process.env, ...env }, stdio: 'ignore' });
    wall.push(performance.now() - started);
    if (timeBin) {
      const [user, system] = readFileSync(report, 'utf8').trim().split('\n').pop().split(' ').map(Number);
      cpu.push((user + system) * 1000);
    }
  }
  return summary(wall, cpu);
}

function processCpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / clockTicks) * 1000;
  } catch {
    return null;
  }
}

async function timeReady(dataDir, env) {
  const times = [];
  const cpu = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const child = spawn(process.execPath, [bin, 'run', '--data', dataDir, '--api', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--link', '127.0.0.1:0', '--log-level', 'warn'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        output += chunk;
        if (/^ready$/m.test(output)) resolve();
      });
      void exited.then(() => reject(new Error(`the agent exited before ready:\n${output}`)));
    });
    times.push(performance.now() - started);
    const used = processCpuMs(child.pid);
    if (used !== null) cpu.push(used);
    child.kill('SIGTERM');
    await exited;
  }
  return summary(times, cpu);
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-startup-'));
try {
  const dataDir = path.join(dir, 'data');
  execFileSync(process.execPath, [bin, 'init', '--data', dataDir, '--site', 'bench'], { stdio: 'ignore' });
  console.log(`${runs} runs each; load average ${os.loadavg().map((load) => load.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
  console.log(`node -e 0                      ${timeCommand(['-e', '0'], {})}`);
  for (const from of ['build', 'source']) {
    const env = { TANDEM_AGENT_FROM: from };
    console.log(`[${from}] --help               ${timeCommand([bin, '--help'], env)}`);
    console.log(`[${from}] run -> ready         ${await timeReady(dataDir, env)}`);
    const agent = spawn(process.execPath, [bin, 'run', '--data', dataDir, '--api', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--link', '127.0.0.1:0', '--log-level', 'warn'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    await new Promise((resolve) => agent.stdout.on('data', (chunk) => (output += chunk) && /^ready$/m.test(output) && resolve()));
    console.log(`[${from}] volume list          ${timeCommand([bin, 'volume', 'list', '--data', dataDir], env)}`);
    const exited = new Promise((resolve) => agent.once('exit', resolve));
    agent.kill('SIGTERM');
    await exited;
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
