// A software WebAuthn authenticator for the integration tests: a P-256 key made with node:crypto,
// CBOR-encoded COSE keys and attestation objects, authenticatorData, clientDataJSON and DER
// signatures — what a browser would post after `navigator.credentials.create/get`.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

export const UP = 0x01;
export const UV = 0x04;
export const BE = 0x08;
export const BS = 0x10;
const AT = 0x40;
export const ICLOUD = 'fbfc3007154e4ecc8c0b6e020557d7bd';

const sha256 = (b) => createHash('sha256').update(b).digest();
const b64u = (b) => Buffer.from(b).toString('base64url');

function head(major, n) {
  const m = major << 5;
  if (n < 24) return Buffer.from([m | n]);
  if (n < 256) return Buffer.from([m | 24, n]);
  if (n < 65536) return Buffer.from([m | 25, n >> 8, n & 255]);
  const b = Buffer.alloc(5); b[0] = m | 26; b.writeUInt32BE(n, 1); return b;
}

/** Canonical CBOR of numbers, strings, byte buffers and Maps (insertion order kept). */
export function cbor(v) {
  if (typeof v === 'number') return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === 'string') { const b = Buffer.from(v); return Buffer.concat([head(3, b.length), b]); }
  if (Buffer.isBuffer(v)) return Buffer.concat([head(2, v.length), v]);
  if (v instanceof Map) {
    const parts = [head(5, v.size)];
    for (const [k, x] of v) parts.push(cbor(k), cbor(x));
    return Buffer.concat(parts);
  }
  throw new Error(`cannot encode ${v}`);
}

export class Authenticator {
  constructor({ aaguid = '00'.repeat(16) } = {}) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    this.jwk = publicKey.export({ format: 'jwk' });
    this.credentialId = randomBytes(16);
    this.aaguid = Buffer.from(aaguid, 'hex');
    this.count = 0;
  }

  cose() {
    return cbor(new Map([[1, 2], [3, -7], [-1, 1],
      [-2, Buffer.from(this.jwk.x, 'base64url')], [-3, Buffer.from(this.jwk.y, 'base64url')]]));
  }

  authData(rpId, flags, count, attested) {
    const c = Buffer.alloc(4); c.writeUInt32BE(count >>> 0);
    const parts = [sha256(rpId), Buffer.from([flags | (attested ? AT : 0)]), c];
    if (attested) {
      const len = Buffer.alloc(2); len.writeUInt16BE(this.credentialId.length);
      parts.push(this.aaguid, len, this.credentialId, this.cose());
    }
    return Buffer.concat(parts);
  }

  static clientData(type, challenge, origin) {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  /** The registration answer (attestation `none`). */
  create({ challenge, origin, rpId, flags = UP | UV }) {
    const clientDataJSON = Authenticator.clientData('webauthn.create', challenge, origin);
    const attestationObject = cbor(new Map([['fmt', 'none'], ['attStmt', new Map()],
      ['authData', this.authData(rpId, flags, 0, true)]]));
    return JSON.stringify({ id: b64u(this.credentialId), rawId: b64u(this.credentialId), type: 'public-key',
      clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), transports: ['internal'] });
  }

  /** The sign-in answer; `count` defaults to one more than the last. */
  get({ challenge, origin, rpId, userHandle, flags = UP | UV, count, type = 'webauthn.get' }) {
    this.count = count ?? this.count + 1;
    const clientDataJSON = Authenticator.clientData(type, challenge, origin);
    const authenticatorData = this.authData(rpId, flags, this.count, false);
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(clientDataJSON)]), this.privateKey);
    return JSON.stringify({ id: b64u(this.credentialId), rawId: b64u(this.credentialId), type: 'public-key',
      clientDataJSON: b64u(clientDataJSON), authenticatorData: b64u(authenticatorData),
      signature: b64u(signature), userHandle: b64u(Buffer.from(userHandle)) });
  }
}
