import { InvalidArgumentError, Option } from 'commander';
import { parseSize } from '@tandem/contract';
import type { HostPort } from '../agent.ts';

/** `--data DIR`, also read from TANDEM_DATA. */
export function dataOption(): Option {
  return new Option('--data <dir>', 'the agent data dir').env('TANDEM_DATA').makeOptionMandatory();
}

export function jsonOption(): Option {
  return new Option('--json', 'machine-readable output');
}

/** SIZE arguments: `1G`, `512M`, `4096`. Range and alignment are the agent's to judge. */
export function parseSizeArgument(text: string): number {
  const bytes = parseSize(text);
  if (bytes === undefined) {
    throw new InvalidArgumentError(`'${text}' is not a size; use bytes or a binary unit like 512M, 10G, 1T`);
  }
  return bytes;
}

/** `--track-size`: a power of two from 4K to 1M. */
export function parseTrackSize(text: string): number {
  const bytes = parseSize(text);
  if (bytes === undefined || bytes < 4096 || bytes > 1024 * 1024 || (bytes & (bytes - 1)) !== 0) {
    throw new InvalidArgumentError(`'${text}' is not a track size; use a power of two from 4K to 1M, like 64K`);
  }
  return bytes;
}

/** A site name: letters, digits, dots, dashes, underscores. */
export function parseSiteName(text: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(text)) {
    throw new InvalidArgumentError(
      `'${text}' is not a site name; use 1 to 63 letters, digits, dots, dashes or underscores, starting with a letter or digit`,
    );
  }
  return text;
}

/** `HOST:PORT`, `[v6]:PORT` or `:PORT`; port 0 picks a free one. */
export function parseHostPort(text: string): HostPort {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new InvalidArgumentError(`'${text}' is not HOST:PORT (like 127.0.0.1:7450, [::1]:7450 or :0)`);
  }
  const host = match[1] ?? (match[2] || '127.0.0.1');
  return { host, port };
}

export function parseCount(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`'${text}' is not a whole number`);
  return Number(text);
}

export function parsePositiveCount(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError(`'${text}' is not a whole number from 1`);
  return Number(text);
}
