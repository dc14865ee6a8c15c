import { describe, expect, it } from 'vitest';
import { redactSecrets } from './audit.ts';

describe('audit trail redaction', () => {
  it('redacts secrets at any depth, by field name in any case', () => {
    expect(redactSecrets({ token: 't', nested: [{ Password: 'p', PSK: 'k', name: 'x' }], clientKeyPem: 'pem', keep: 'v' })).toEqual({
      token: '[redacted]',
      nested: [{ Password: '[redacted]', PSK: '[redacted]', name: 'x' }],
      clientKeyPem: '[redacted]',
      keep: 'v',
    });
  });
});
