import { formatSize } from '@tandem/contract';

export { formatSize };

/** `42 %` of a whole, or a dash when there is no whole. */
export function formatPercent(part: number, whole: number): string {
  if (whole <= 0) return '–';
  return `${Math.round((part / whole) * 100)} %`;
}
