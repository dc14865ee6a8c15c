import { useSyncExternalStore } from 'react';

/**
 * One shared clock for every "3 s ago" on screen: a single timer ticks once a
 * second while anything shows an age (and stops when nothing does), so ages
 * stay live without refetching anything.
 */
const listeners = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | undefined;
let now = Date.now();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  if (!timer) {
    now = Date.now();
    timer = setInterval(() => {
      now = Date.now();
      for (const each of listeners) each();
    }, 1000);
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/** The time now (ms), updated once a second while the calling component is mounted. */
export function useNow(): number {
  return useSyncExternalStore(subscribe, () => now);
}
