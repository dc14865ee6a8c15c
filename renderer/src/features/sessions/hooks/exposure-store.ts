import { create } from 'zustand';
import type { ExposureRange } from './exposure-history.ts';

/**
 * UI state of the exposure charts: the range each session's chart shows
 * (1 h unless chosen otherwise). The samples themselves are server state:
 * the agents keep them (GET .../sessions/:name/history, TanStack Query).
 */
interface ExposureChartState {
  ranges: Record<string, ExposureRange>;
  setRange(sessionId: string, range: ExposureRange): void;
}

export const useExposureStore = create<ExposureChartState>()((set) => ({
  ranges: {},
  setRange: (sessionId, range) => set((state) => ({ ranges: { ...state.ranges, [sessionId]: range } })),
}));
