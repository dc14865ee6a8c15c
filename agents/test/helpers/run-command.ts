import { spawn } from 'node:child_process';
import type { AgentProcess } from './agent-process.ts';

/** Runs a command (qemu-io, qemu-img, fio…) to completion; stdout and stderr together in `out`. */
export function runCommand(command: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** `tandem-agent ARGS --json` against an agent; throws with its stderr when it fails. */
export async function agentCliJson<T>(agent: AgentProcess, args: string[]): Promise<T> {
  const result = await agent.cli([...args, '--json']);
  if (result.code !== 0) throw new Error(`tandem-agent ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}
