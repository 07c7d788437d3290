/**
 * A ref name as the manifest may hold it (FORMAT.md) and as a push may store it: git
 * check-ref-format's rules, without spawning git for every ref: no component begins with
 * "." or ends with ".lock", no "..", no control characters, space, ~ ^ : ? * [ \, no "@{",
 * no "//", does not end with "/" or ".", and is not "@".
 */
export function isValidRefName(name: string): boolean {
  if (name === '' || name === '@' || name.endsWith('/') || name.endsWith('.') || name.startsWith('/')) return false;
  if (name.includes('..') || name.includes('@{') || name.includes('//')) return false;
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return false;
  return name.split('/').every((c) => c !== '' && !c.startsWith('.') && !c.endsWith('.lock'));
}
