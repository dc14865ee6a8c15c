import { describe, expect, it } from 'vitest';
import { senderIsFrom } from './ipc-sender.ts';

describe('senderIsFrom', () => {
  const trusted = senderIsFrom('http://127.0.0.1:4000');

  it('accepts the main frame of the backend’s page', () => {
    expect(trusted({ senderFrame: { url: 'http://127.0.0.1:4000/#token=x', parent: null } })).toBe(true);
  });

  it('refuses other origins, subframes, missing frames and junk URLs', () => {
    expect(trusted({ senderFrame: { url: 'http://127.0.0.1:4001/', parent: null } })).toBe(false);
    expect(trusted({ senderFrame: { url: 'https://evil.example/', parent: null } })).toBe(false);
    expect(trusted({ senderFrame: { url: 'http://127.0.0.1:4000/', parent: {} } })).toBe(false);
    expect(trusted({ senderFrame: null })).toBe(false);
    expect(trusted({ senderFrame: { url: 'not a url', parent: null } })).toBe(false);
  });
});
