import { cleanup, configure } from '@testing-library/react';
import { afterEach, expect } from 'vitest';

// Mantine reads these; happy-dom lacks them.
if (!window.matchMedia) {
  window.matchMedia = (query: string) =>
    ({
      matches: false,
      media: query,
      onchange: null,
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
      addListener: () => undefined,
      removeListener: () => undefined,
      dispatchEvent: () => false,
    }) as MediaQueryList;
}
if (!('ResizeObserver' in window)) {
  (window as unknown as { ResizeObserver: unknown }).ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
}

afterEach(() => cleanup());

// findBy* and waitFor poll for a state until this deadline (the library's default, 1 s, fails on a loaded 2-core CI
// machine before a slow render has happened); a test waiting for a state that never comes still fails, later.
configure({ asyncUtilTimeout: 10_000 });

// happy-dom lays nothing out: give elements a size so the virtualized table renders rows.
const zeroRect = Element.prototype.getBoundingClientRect;
Element.prototype.getBoundingClientRect = function getBoundingClientRect(this: Element) {
  const rect = zeroRect.call(this);
  if (rect.width > 0 || rect.height > 0) return rect;
  return { x: 0, y: 0, top: 0, left: 0, right: 1024, bottom: 768, width: 1024, height: 768, toJSON: () => ({}) } as DOMRect;
};

/** The few DOM matchers these tests use (what @testing-library/jest-dom would add). */
expect.extend({
  toHaveTextContent(received: Element, expected: string | RegExp) {
    const text = received.textContent ?? '';
    const pass = typeof expected === 'string' ? text.includes(expected) : expected.test(text);
    return { pass, message: () => `expected element text ${JSON.stringify(text.slice(0, 300))} ${pass ? 'not ' : ''}to contain ${String(expected)}` };
  },
  toBeInTheDocument(received: Element | null) {
    const pass = received !== null && received.ownerDocument.contains(received);
    return { pass, message: () => `expected element ${pass ? 'not ' : ''}to be in the document` };
  },
  toBeDisabled(received: Element) {
    const pass = received.hasAttribute('disabled') || received.getAttribute('data-disabled') === 'true';
    return { pass, message: () => `expected element ${pass ? 'not ' : ''}to be disabled` };
  },
});

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- must match vitest's declaration
  interface Matchers<T = any> {
    toHaveTextContent(expected: string | RegExp): T;
    toBeInTheDocument(): T;
    toBeDisabled(): T;
  }
}

for (const [property, size] of [
  ['offsetWidth', 1024],
  ['offsetHeight', 768],
  ['clientWidth', 1024],
  ['clientHeight', 768],
] as const) {
  Object.defineProperty(HTMLElement.prototype, property, { configurable: true, get: () => size });
}
