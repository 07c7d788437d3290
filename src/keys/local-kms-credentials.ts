import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KmscryptError } from '../errors';
import { createPrivateFile, readPrivateFile } from './private-file';

/**
 * The access key that `git kmscrypt local-kms` requires on every request (SigV4), kept beside the
 * keyring it serves, mode 0600: whoever can read it could read the keyring too, and nobody else
 * can use the server.
 */
export interface LocalKmsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

interface CredentialsFile extends LocalKmsCredentials {
  version: 1;
}

export const LOCAL_KMS_CREDENTIALS_FILE = 'local-kms-credentials.json';
const WHAT = 'local KMS credentials';
const HINT = 'delete it and restart git kmscrypt local-kms to make new ones';
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function localKmsCredentialsPath(keyringPath: string): string {
  return join(dirname(keyringPath), LOCAL_KMS_CREDENTIALS_FILE);
}

/** The credentials beside `keyringPath`, or undefined when there are none. */
export function readLocalKmsCredentials(keyringPath: string): LocalKmsCredentials | undefined {
  const path = localKmsCredentialsPath(keyringPath);
  const raw = readPrivateFile(path, WHAT, HINT);
  return raw === undefined ? undefined : parse(raw, path);
}

/** The credentials beside `keyringPath`, made (random, mode 0600) when there are none yet. */
export function localKmsCredentialsFor(keyringPath: string): LocalKmsCredentials {
  const existing = readLocalKmsCredentials(keyringPath);
  if (existing) return existing;
  const path = localKmsCredentialsPath(keyringPath);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const made: CredentialsFile = { version: 1, accessKeyId: newAccessKeyId(), secretAccessKey: randomBytes(30).toString('base64') };
  // Another local-kms starting at the same moment may have made them first: then both use those.
  createPrivateFile(path, JSON.stringify(made, null, 2) + '\n', WHAT);
  const stored = readLocalKmsCredentials(keyringPath);
  if (!stored)
    throw new KmscryptError('KEYRING', `${WHAT} ${path} vanished as soon as it was written`, { path, fix: `check who else writes to ${dirname(path)}` });
  return stored;
}

/** 20 characters like an AWS access key ID; the LKIA prefix tells it apart from AWS's own. */
function newAccessKeyId(): string {
  let id = 'LKIA';
  for (let i = 0; i < 16; i++) id += BASE32[randomInt(BASE32.length)];
  return id;
}

function parse(raw: string, path: string): LocalKmsCredentials {
  let data: Partial<CredentialsFile>;
  try {
    data = JSON.parse(raw) as Partial<CredentialsFile>;
  } catch {
    data = {};
  }
  const valid = (s: unknown): s is string => typeof s === 'string' && s.length >= 16 && /^[\x21-\x7e]+$/.test(s);
  if (data?.version !== 1 || !valid(data.accessKeyId) || !valid(data.secretAccessKey)) {
    throw new KmscryptError('KEYRING', `${WHAT} ${path} is not a version 1 file with an accessKeyId and a secretAccessKey`, { path, fix: HINT });
  }
  return { accessKeyId: data.accessKeyId, secretAccessKey: data.secretAccessKey };
}
