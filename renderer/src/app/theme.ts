import { createTheme, Modal } from '@mantine/core';

export const theme = createTheme({
  primaryColor: 'indigo',
  fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  fontFamilyMonospace: 'ui-monospace, "DejaVu Sans Mono", monospace',
  components: {
    // Every dialog's ✕ is an icon button: it gets a name screen readers say ("Dismiss", so it is never taken for a Close or Cancel button).
    Modal: Modal.extend({ defaultProps: { closeButtonProps: { 'aria-label': 'Dismiss dialog' } } }),
  },
});
