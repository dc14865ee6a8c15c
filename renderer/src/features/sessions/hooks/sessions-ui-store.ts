import { create } from 'zustand';

/** UI state of the Sessions screen only: which wizard is open (the screen itself is a route: app/ui-store.ts). */
interface SessionsUiState {
  createWizardOpen: boolean;
  /** The failback wizard, with the session it starts from (null: pick one). */
  failbackOpen: boolean;
  failbackSessionId: string | null;
  setCreateWizardOpen(open: boolean): void;
  openFailback(sessionId: string | null): void;
  closeFailback(): void;
}

export const useSessionsUi = create<SessionsUiState>()((set) => ({
  createWizardOpen: false,
  failbackOpen: false,
  failbackSessionId: null,
  setCreateWizardOpen: (open) => set({ createWizardOpen: open }),
  openFailback: (sessionId) => set({ failbackOpen: true, failbackSessionId: sessionId }),
  closeFailback: () => set({ failbackOpen: false, failbackSessionId: null }),
}));
