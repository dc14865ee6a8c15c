import { TextInput } from '@mantine/core';
import { parseSize } from '@tandem/contract';
import { formatSize } from '../../../lib/format.ts';

/** A size as people write it (`10G`, `512M`); shows what it understood. */
export function SizeInput({ value, onChange, label }: { value: string; onChange: (text: string) => void; label: string }) {
  const bytes = parseSize(value);
  const hint = value.trim() === '' ? 'e.g. 10G, 512M' : bytes === undefined ? 'not a size' : `${formatSize(bytes)} (${bytes.toLocaleString()} bytes)`;
  return (
    <TextInput
      label={label}
      description={hint}
      value={value}
      onChange={(event) => onChange(event.currentTarget.value)}
      error={value.trim() !== '' && bytes === undefined ? 'write a size like 10G or 512M' : undefined}
      required
    />
  );
}
