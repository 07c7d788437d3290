/**
 * A TLS handshake that failed, told in words, with what fixes it: Node's own message ("self-signed
 * certificate", "Hostname/IP does not match certificate's altnames: …") names neither the
 * endpoint nor what to do. Used for the S3 and the KMS endpoint alike.
 */
export interface TlsFailure {
  /** Node's error code, e.g. DEPTH_ZERO_SELF_SIGNED_CERT. */
  code: string;
  cause: string;
  fix: string;
}

const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
]);
const TRUST_FIX = 'if the server uses a private certificate authority, give its certificate to Node.js: NODE_EXTRA_CA_CERTS=/path/to/ca.pem';

export function tlsFailure(err: unknown): TlsFailure | undefined {
  const e = errorWithCode(err);
  if (!e) return undefined;
  const { code, message } = e;
  if (UNTRUSTED.has(code)) {
    const what =
      code === 'DEPTH_ZERO_SELF_SIGNED_CERT'
        ? 'its certificate is self-signed'
        : 'its certificate is not signed by a certificate authority this machine trusts';
    return { code, cause: `${what} (${code})`, fix: TRUST_FIX };
  }
  if (code === 'CERT_HAS_EXPIRED')
    return { code, cause: `its certificate has expired (${code})`, fix: "renew the server's certificate, or check this machine's clock" };
  if (code === 'CERT_NOT_YET_VALID')
    return { code, cause: `its certificate is not valid yet (${code})`, fix: "check this machine's clock and the certificate's start date" };
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    // Node keeps the certificate on the error; its message lists the names only for a host name, not for an IP address.
    const names = e.certificateNames ?? /cert's altnames: (.+)$/.exec(message)?.[1];
    return {
      code,
      cause: `its certificate is for another host name${names ? ` (${names})` : ''} (${code})`,
      fix: 'write the endpoint with a host name the certificate names',
    };
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || (code === 'EPROTO' && /wrong version number/i.test(message))) {
    return {
      code,
      cause: `it does not answer in TLS (${code}: wrong version number)`,
      fix: 'if the server speaks plain HTTP, write its endpoint with http:// (accepted on loopback, or with kmscrypt.allowHttp=true)',
    };
  }
  if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /^CERT_|_CERT(_|$)/.test(code)) {
    return {
      code,
      cause: `the TLS handshake failed (${code}: ${message.split('\n')[0]})`,
      fix: "check the endpoint's host name and port, and its certificate",
    };
  }
  return undefined;
}

/** The error or the cause under it (the SDK passes socket errors through, sometimes wrapped) that has a string code. */
function errorWithCode(err: unknown): { code: string; message: string; certificateNames?: string } | undefined {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 3; depth++) {
    const { code, message, cause, cert } = e as { code?: unknown; message?: unknown; cause?: unknown; cert?: { subjectaltname?: unknown } };
    if (typeof code === 'string') {
      const names = cert?.subjectaltname;
      return { code, message: typeof message === 'string' ? message : '', certificateNames: typeof names === 'string' && names !== '' ? names : undefined };
    }
    e = cause;
  }
  return undefined;
}
