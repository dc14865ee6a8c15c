import '@mantine/core/styles.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app/App.tsx';
import { resolveBackendEndpoint } from './lib/backend-endpoint.ts';

const root = createRoot(document.getElementById('root')!);
const endpoint = await resolveBackendEndpoint();
root.render(
  <StrictMode>
    <App endpoint={endpoint} />
  </StrictMode>,
);
