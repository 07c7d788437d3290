export type ObjectFormat = 'sha1' | 'sha256';

export function hashLength(format: ObjectFormat): number {
  return format === 'sha1' ? 20 : 32;
}

export function isObjectFormat(value: unknown): value is ObjectFormat {
  return value === 'sha1' || value === 'sha256';
}

export function isObjectId(value: string, format: ObjectFormat): boolean {
  return value.length === hashLength(format) * 2 && /^[0-9a-f]+$/.test(value);
}
