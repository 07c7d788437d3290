/**
 * test/vectors/format-v3.json, read by both implementations of docs/FORMAT.md that check it
 * (src/format in test/format-vectors.test.ts, the independent one in
 * test/format-independent.test.ts). Plain JSON types: it imports nothing from src/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FormatV3Vectors {
  dataKey: string;
  repositoryId: string;
  containerId: string;
  nonce: string;
  subkeys: { commitment: { container: string; manifest: string; descriptor: string }; descriptorMacKey: string; scheduleKey: string };
  descriptor: { proofInput: string; stored: string; sha256: string };
  containerPreamble: { hashLength: number; keyId: string; wrappedKey: string; encoded: string };
  endorsement: { to: string; plaintext: string };
  histories: Array<{ first: number; end: number; previous: string | null; hashes: string[]; encoded: string; sha256: string }>;
  manifest: {
    generation: number;
    keyArn: string;
    wrappedKey: string;
    previous: string;
    history: { generation: number; hash: string };
    endorsements: Array<{ from: string; to: string; ciphertext: string }>;
    preambleLength: number;
    stored: string;
    sha256: string;
    /** The JSON body, in the order its fields were written. */
    manifest: unknown;
  };
  schedule: { nonce: string; keyArn: string; wrappedKey: string; stored: string; schedule: { createdAt: string; containers: string[]; generation: number } };
}

export function loadFormatV3Vectors(): FormatV3Vectors {
  return JSON.parse(readFileSync(join(__dirname, '..', 'vectors', 'format-v3.json'), 'utf8')) as FormatV3Vectors;
}

/** What either implementation's parsed manifest envelope says of the version 3 preamble, as JSON values. */
export function manifestPreambleView(env: {
  version: number;
  generation: number;
  keyId: string;
  wrappedKey: Buffer;
  commitment: Buffer | null;
  previous: string | null | undefined;
  history: { generation: number; hash: string } | null;
  endorsements: Array<{ from: string; to: string; ciphertext: Buffer }>;
  preamble: Buffer;
}) {
  return {
    version: env.version,
    generation: env.generation,
    keyId: env.keyId,
    wrappedKey: env.wrappedKey.toString('hex'),
    commitment: env.commitment?.toString('hex'),
    previous: env.previous,
    history: env.history,
    endorsements: env.endorsements.map((e) => ({ from: e.from, to: e.to, ciphertext: e.ciphertext.toString('hex') })),
    preambleLength: env.preamble.length,
  };
}

/** What the vector says that view must be. */
export function expectedManifestPreamble(v: FormatV3Vectors): ReturnType<typeof manifestPreambleView> {
  const m = v.manifest;
  return {
    version: 3,
    generation: m.generation,
    keyId: m.keyArn,
    wrappedKey: m.wrappedKey,
    commitment: v.subkeys.commitment.manifest,
    previous: m.previous,
    history: m.history,
    endorsements: m.endorsements,
    preambleLength: m.preambleLength,
  };
}
