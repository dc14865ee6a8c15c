import { create } from 'zustand';

/** UI state only (never server data): what is selected and open. */
export interface UiState {
  selectedSiteId: string | null;
  selectedVolume: string | null;
  connectWizardOpen: boolean;
  selectSite(siteId: string | null): void;
  selectVolume(name: string | null): void;
  setConnectWizardOpen(open: boolean): void;
}

export const useUiStore = create<UiState>()((set) => ({
  selectedSiteId: null,
  selectedVolume: null,
  connectWizardOpen: false,
  selectSite: (siteId) => set({ selectedSiteId: siteId, selectedVolume: null }),
  selectVolume: (name) => set({ selectedVolume: name }),
  setConnectWizardOpen: (open) => set({ connectWizardOpen: open }),
}));
