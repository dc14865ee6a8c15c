/** Legend and canvas colours, per colour scheme. */
export interface TrackMapColors {
  unallocated: string;
  exclusive: string;
  shared: string;
  grid: string;
}

export function trackMapColors(scheme: 'light' | 'dark'): TrackMapColors {
  return scheme === 'dark'
    ? { unallocated: '#2e2e33', exclusive: '#4dabf7', shared: '#ffa94d', grid: '#1a1b1e' }
    : { unallocated: '#e9ecef', exclusive: '#1c7ed6', shared: '#f76707', grid: '#ffffff' };
}
