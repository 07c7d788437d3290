import { resolve } from 'node:path';
import { KmscryptError } from '../errors';

export type RemoteLocation =
  { kind: 'local'; path: string } | { kind: 's3'; bucket: string; prefix: string; profile?: string; region?: string; endpoint?: string };

/**
 * Parses what follows `kmscrypt::`.
 *   file:///abs/path, file://localhost/abs/path, /abs/path, ./rel, ../rel   a local directory store
 *   s3://[profile@]bucket[/prefix][?region=R&endpoint=URL]
 *   bucket[/prefix]                             S3, like s3:// without a profile
 * A bare word is a bucket, so a relative local path must start with ./ or ../ (file:// takes only
 * absolute paths). openRemote refuses a bare word when a directory of that name exists here.
 */
export function parseRemoteUrl(url: string, cwd: string = process.cwd()): RemoteLocation {
  const bad = (why: string, fix?: string) => new KmscryptError('BAD_URL', `invalid kmscrypt URL ${JSON.stringify(url)}: ${why}`, { fix });
  if (url === '') throw bad('it is empty', 'use kmscrypt::s3://bucket/prefix or kmscrypt::file:///path');
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      throw bad(`malformed percent-encoding in ${JSON.stringify(text)}`);
    }
  };
  if (url.startsWith('file://')) {
    // As in git and RFC 8089: file://<host>/<path>. Only this machine (no host, or localhost) can
    // hold a store; git reads file://tmp/x as host "tmp" and refuses, and so do we.
    const raw = url.slice('file://'.length);
    if (raw === '') throw bad('no path after file://');
    const slash = raw.indexOf('/');
    const host = slash < 0 ? raw : raw.slice(0, slash);
    if (host !== '' && host.toLowerCase() !== 'localhost') {
      throw bad(
        `file:// is followed by a host name, here ${JSON.stringify(host)}`,
        `for the absolute path /${raw} write file:///${raw} (three slashes), for a directory relative to here write ./${raw}`,
      );
    }
    const path = decode(slash < 0 ? '' : raw.slice(slash));
    if (path === '') throw bad(`no path after file://${host}`);
    return { kind: 'local', path: resolve(path) };
  }
  if (url.startsWith('/') || url.startsWith('./') || url.startsWith('../') || url === '.' || url === '..') {
    return { kind: 'local', path: resolve(cwd, url) };
  }
  let rest = url;
  let profile: string | undefined;
  if (url.startsWith('s3://')) {
    rest = url.slice('s3://'.length);
    const at = rest.indexOf('@');
    const slash = rest.indexOf('/');
    if (at >= 0 && (slash < 0 || at < slash)) {
      profile = rest.slice(0, at);
      rest = rest.slice(at + 1);
      if (!/^[A-Za-z0-9_.+-]+$/.test(profile)) throw bad(`profile name ${JSON.stringify(profile)} is not valid`);
    }
  } else if (/^[a-z][a-z0-9+.-]*:/i.test(url)) {
    throw bad(`unsupported scheme ${url.slice(0, url.indexOf(':'))}`, 'use s3:// or file://');
  }
  let query = '';
  const q = rest.indexOf('?');
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..')) {
    throw bad(
      `${JSON.stringify(bucket)} is not a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)`,
      url.startsWith('s3://') ? 'write s3://bucket/prefix' : `for a local directory write ./${url} or file:///absolute/path`,
    );
  }
  if (prefix.split('/').some((p) => p === '' || p === '.' || p === '..') && prefix !== '') {
    throw bad('the prefix has an empty, "." or ".." segment');
  }
  const location: RemoteLocation = { kind: 's3', bucket, prefix, profile };
  for (const pair of query ? query.split('&') : []) {
    const eq = pair.indexOf('=');
    const k = decode(eq < 0 ? pair : pair.slice(0, eq));
    const v = eq < 0 ? '' : decode(pair.slice(eq + 1));
    if (k !== 'region' && k !== 'endpoint') throw bad(`unknown parameter ${JSON.stringify(k)}`, 'known: region, endpoint');
    if (!v) throw bad(`parameter ${k} has no value`);
    if (k === 'region') location.region = v;
    else location.endpoint = v;
  }
  return location;
}

/** The location as messages, and what a clone remembers per URL (remotes.json), name it. */
export function storeUrl(location: RemoteLocation): string {
  return location.kind === 'local' ? `file://${location.path}` : `s3://${location.bucket}${location.prefix ? '/' + location.prefix : ''}`;
}

/**
 * For a local directory given relative to where git runs (`./rel`, `../rel`), the same directory
 * as an absolute path, which a clone stores as plain git does for a local clone; undefined for
 * any other URL.
 */
export function absoluteFormOfRelative(url: string, cwd: string = process.cwd()): string | undefined {
  return /^\.\.?(\/|$)/.test(url) ? resolve(cwd, url) : undefined;
}
