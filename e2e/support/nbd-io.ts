import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RunningAgent } from '../../scripts/lib/agents.mjs';

const execFileAsync = promisify(execFile);

/** Writes (or reads) through an agent's NBD export with qemu-io, as an application host would. */
export async function qemuIo(agent: RunningAgent, exportName: string, ...commands: string[]): Promise<void> {
  await execFileAsync('qemu-io', ['-f', 'raw', ...commands.flatMap((command) => ['-c', command]), `nbd://${agent.nbdAddress}/${exportName}`], { timeout: 60_000 });
}

/** Reads a whole export through NBD into a file (what a backup host would do). */
export async function readExport(agent: RunningAgent, exportName: string, file: string): Promise<void> {
  await execFileAsync('nbdcopy', [`nbd://${agent.nbdAddress}/${exportName}`, file], { timeout: 60_000 });
}

/** `qemu-img compare` of a file and an export read through NBD: true when every byte is equal. */
export async function sameBytes(file: string, agent: RunningAgent, exportName: string): Promise<boolean> {
  try {
    await execFileAsync('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', file, `nbd://${agent.nbdAddress}/${exportName}`], { timeout: 60_000 });
    return true;
  } catch (error) {
    // Exit 1: the images differ; anything else is a failure of the check itself.
    if ((error as { code?: number }).code === 1) return false;
    throw error;
  }
}
