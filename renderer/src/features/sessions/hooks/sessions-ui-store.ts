import { create } from 'zustand';

/** UI state of the Sessions screen only: which page is shown and which wizard is open. */
interface SessionsUiState {
  /** The Sessions screen replaces the site pages while open. */
  sessionsOpen: boolean;
  createWizardOpen: boolean;
  /** The failback wizard, with the session it starts from (null: pick one). */
  failbackOpen: boolean;
  failbackSessionId: string | null;
  showSessions(open: boolean): void;
  setCreateWizardOpen(open: boolean): void;
  openFailback(sessionId: string | null): void;
  closeFailback(): void;
}

export const useSessionsUi = create<SessionsUiState>()((set) => ({
  sessionsOpen: false,
  createWizardOpen: false,
  failbackOpen: false,
  failbackSessionId: null,
  showSessions: (open) => set({ sessionsOpen: open }),
  setCreateWizardOpen: (open) => set({ createWizardOpen: open }),
  openFailback: (sessionId) => set({ failbackOpen: true, failbackSessionId: sessionId }),
  closeFailback: () => set({ failbackOpen: false, failbackSessionId: null }),
}));
