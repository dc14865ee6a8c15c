import { create } from 'zustand';

/** Seconds since the epoch, exposure in seconds. */
export interface ExposureSample {
  time: number;
  exposure: number;
}

const maxSamples = 720;

/**
 * Exposure seen per session while this console runs, for the live chart.
 * Samples come from session info updates (events and the low-rate refresh);
 * they are what the UI has shown, not server state of their own.
 */
interface ExposureState {
  samples: Record<string, ExposureSample[]>;
  record(sessionId: string, time: number, exposure: number): void;
}

export const useExposureStore = create<ExposureState>()((set) => ({
  samples: {},
  record: (sessionId, time, exposure) =>
    set((state) => {
      const list = state.samples[sessionId] ?? [];
      const last = list[list.length - 1];
      // Two renders of the same answer land within a moment of each other: keep one.
      if (last && time - last.time < 0.5) return state;
      return { samples: { ...state.samples, [sessionId]: [...list, { time, exposure }].slice(-maxSamples) } };
    }),
}));
