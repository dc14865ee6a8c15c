import { useFlashUi } from '../hooks/flash-ui-store.ts';
import { FlashCopyWizard } from './FlashCopyWizard.tsx';

/** The flash copy wizard while open (pages that offer the entry point render this once). */
export function FlashWizardHost() {
  const open = useFlashUi((state) => state.wizardOpen);
  return open ? <FlashCopyWizard /> : null;
}
