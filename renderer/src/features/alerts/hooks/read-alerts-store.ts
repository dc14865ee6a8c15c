import { create } from 'zustand';

/** Where the read marks are kept between console runs (this browser profile or desktop app). */
const storageKey = 'tandem.alerts.read';
/** Read marks kept at most (the oldest go first). */
const maxKept = 2000;

/** An alert across sites: the console site id and the agent's alert id. */
export const alertRef = (siteId: string, alertId: number) => `${siteId}:${alertId}`;

function load(): string[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(storageKey) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter((item): item is string => typeof item === 'string') : [];
  } catch {
    return [];
  }
}

function save(refs: string[]): void {
  try {
    localStorage.setItem(storageKey, JSON.stringify(refs));
  } catch {
    // Storage full or refused: the marks last for this run only.
  }
}

/** UI state of the notification centre: which alerts the administrator has read, and whether the panel is open. */
export interface ReadAlertsState {
  read: ReadonlySet<string>;
  open: boolean;
  setOpen(open: boolean): void;
  markRead(refs: string[]): void;
}

export const useReadAlertsStore = create<ReadAlertsState>()((set, get) => ({
  read: new Set(typeof localStorage === 'undefined' ? [] : load()),
  open: false,
  setOpen: (open) => set({ open }),
  markRead: (refs) => {
    const next = new Set(get().read);
    for (const ref of refs) next.add(ref);
    const kept = [...next].slice(-maxKept);
    save(kept);
    set({ read: new Set(kept) });
  },
}));
