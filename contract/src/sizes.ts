/** Byte sizes as people write them: `1G`, `512M`, `64K`, `4096`, `1.5T`, `10GiB`. */

const units: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1024,
  KB: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TB: 1024 ** 4,
  TIB: 1024 ** 4,
};

/** Parses a size; returns undefined when the text is not a size. Units are binary (K = 1024). */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) return undefined;
  const unit = units[match[2].toUpperCase()];
  if (unit === undefined) return undefined;
  const value = Number(match[1]) * unit;
  if (!Number.isFinite(value) || !Number.isInteger(value)) return undefined;
  return value;
}

/** Formats bytes with a binary unit and at most one decimal: `1.5 GiB`. */
export function formatSize(bytes: number): string {
  const names = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let index = 0;
  while (Math.abs(value) >= 1024 && index < names.length - 1) {
    value /= 1024;
    index++;
  }
  const text = index === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${text} ${names[index]}`;
}

export const KiB = 1024;
export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
export const TiB = 1024 ** 4;

/** Largest volume an agent accepts. */
export const maxVolumeBytes = 64 * TiB;
/** Volume sizes are multiples of this. */
export const volumeSizeGranule = 4 * KiB;
