import { create } from 'zustand';

/** UI state of flash copy only: whether the wizard is open and what it starts from. */
interface FlashUiState {
  wizardOpen: boolean;
  /** The site and source volume the wizard starts with (null: the administrator picks). */
  startSiteId: string | null;
  startSource: string | null;
  openWizard(start?: { siteId: string; source?: string }): void;
  closeWizard(): void;
}

export const useFlashUi = create<FlashUiState>()((set) => ({
  wizardOpen: false,
  startSiteId: null,
  startSource: null,
  openWizard: (start) => set({ wizardOpen: true, startSiteId: start?.siteId ?? null, startSource: start?.source ?? null }),
  closeWizard: () => set({ wizardOpen: false, startSiteId: null, startSource: null }),
}));
