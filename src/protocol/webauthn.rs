//! Passkeys: what a WebAuthn relying party checks (W3C Web Authentication Level 2, §7.1
//! "Registering a New Credential" and §7.2 "Verifying an Authentication Assertion"), in plain
//! Rust. Ceremony state (the challenge) and storage are the caller's: this module takes the
//! expected challenge, origin and RP ID, the browser's response, and — for an assertion — the
//! stored public key and counter, and says yes (with what the authenticator reported) or why not.
//!
//! Why our own verification rather than `webauthn_rp`: the checks are few and listed in the spec,
//! the CBOR we must read is a small canonical subset (CTAP2 §6 "canonical CBOR": definite lengths
//! only), and the signature algorithms come from the RustCrypto crates (`p256`, `ed25519-dalek`,
//! `rsa`) that build for wasm without a JavaScript randomness backend (verification needs none).
//! Ceremony state stays what Clavex already seals into forms, instead of the library's own
//! serialised server state.
//!
//! Attestation: `none` is accepted, and `packed` self attestation (no `x5c`: the credential key
//! signs its own registration, §8.2). A certificate chain is not verified — Clavex does not
//! restrict authenticator models — so formats that only make sense with one are refused rather
//! than accepted unchecked.

use serde::Deserialize;

use crate::crypto::{b64url, b64url_decode, sha256};

// ---- Authenticator data flags (§6.1) ----

pub const FLAG_UP: u8 = 0x01;
pub const FLAG_UV: u8 = 0x04;
pub const FLAG_BE: u8 = 0x08;
pub const FLAG_BS: u8 = 0x10;
pub const FLAG_AT: u8 = 0x40;
pub const FLAG_ED: u8 = 0x80;

/// COSE algorithm identifiers (IANA "COSE Algorithms") of the three algorithms verified here, in
/// the order the registration options prefer them.
pub const ES256: i64 = -7;
pub const EDDSA: i64 = -8;
pub const RS256: i64 = -257;
pub const ALGORITHMS: [i64; 3] = [ES256, EDDSA, RS256];

/// Why a ceremony's response is refused (for the audit trail; the user sees one message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    WrongType,
    WrongChallenge,
    WrongOrigin,
    CrossOrigin,
    WrongRpId,
    NoUserPresence,
    NoUserVerification,
    NoCredentialData,
    CredentialIdMismatch,
    UnsupportedAlgorithm,
    UnsupportedAttestation,
    BadSignature,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::WrongType => "wrong_type",
            Refusal::WrongChallenge => "wrong_challenge",
            Refusal::WrongOrigin => "wrong_origin",
            Refusal::CrossOrigin => "cross_origin",
            Refusal::WrongRpId => "wrong_rp_id",
            Refusal::NoUserPresence => "user_not_present",
            Refusal::NoUserVerification => "user_not_verified",
            Refusal::NoCredentialData => "no_credential_data",
            Refusal::CredentialIdMismatch => "credential_id_mismatch",
            Refusal::UnsupportedAlgorithm => "unsupported_algorithm",
            Refusal::UnsupportedAttestation => "unsupported_attestation",
            Refusal::BadSignature => "bad_signature",
        }
    }
}

// ---- CBOR (RFC 8949), the canonical subset CTAP2 authenticators emit ----

#[derive(Debug, Clone, PartialEq)]
pub enum Cbor {
    Int(i128),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Cbor>),
    Map(Vec<(Cbor, Cbor)>),
    Bool(bool),
    Null,
}

impl Cbor {
    fn get(&self, key: &Cbor) -> Option<&Cbor> {
        match self {
            Cbor::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn text_key(&self, key: &str) -> Option<&Cbor> {
        self.get(&Cbor::Text(key.to_string()))
    }
    fn int_key(&self, key: i128) -> Option<&Cbor> {
        self.get(&Cbor::Int(key))
    }
    fn as_int(&self) -> Option<i128> {
        match self {
            Cbor::Int(i) => Some(*i),
            _ => None,
        }
    }
    fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Cbor::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// Nesting deeper than this is not something an authenticator sends.
const MAX_DEPTH: usize = 16;

/// One CBOR item at the start of `input`, and how many bytes it took.
pub fn cbor_item(input: &[u8]) -> Option<(Cbor, usize)> {
    let mut pos = 0;
    let item = read(input, &mut pos, 0)?;
    Some((item, pos))
}

fn read(input: &[u8], pos: &mut usize, depth: usize) -> Option<Cbor> {
    if depth > MAX_DEPTH {
        return None;
    }
    let first = *input.get(*pos)?;
    *pos += 1;
    let major = first >> 5;
    let info = first & 0x1f;
    let mut take = |n: usize| -> Option<u64> {
        let bytes = input.get(*pos..*pos + n)?;
        *pos += n;
        Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    let argument = match info {
        0..=23 => u64::from(info),
        24 => take(1)?,
        25 => take(2)?,
        26 => take(4)?,
        27 => take(8)?,
        // Indefinite lengths (31) and reserved values: not canonical CTAP2 CBOR.
        _ => return None,
    };
    // A length can never exceed what is left: refuses absurd lengths before allocating.
    let remaining = (input.len() - *pos) as u64;
    match major {
        0 => Some(Cbor::Int(i128::from(argument))),
        1 => Some(Cbor::Int(-1 - i128::from(argument))),
        2 | 3 => {
            if argument > remaining {
                return None;
            }
            let bytes = input[*pos..*pos + argument as usize].to_vec();
            *pos += argument as usize;
            if major == 2 {
                Some(Cbor::Bytes(bytes))
            } else {
                String::from_utf8(bytes).ok().map(Cbor::Text)
            }
        }
        4 => {
            if argument > remaining {
                return None;
            }
            let mut items = Vec::with_capacity(argument as usize);
            for _ in 0..argument {
                items.push(read(input, pos, depth + 1)?);
            }
            Some(Cbor::Array(items))
        }
        5 => {
            if argument.saturating_mul(2) > remaining {
                return None;
            }
            let mut entries = Vec::with_capacity(argument as usize);
            for _ in 0..argument {
                let key = read(input, pos, depth + 1)?;
                let value = read(input, pos, depth + 1)?;
                entries.push((key, value));
            }
            Some(Cbor::Map(entries))
        }
        7 => match info {
            20 => Some(Cbor::Bool(false)),
            21 => Some(Cbor::Bool(true)),
            22 => Some(Cbor::Null),
            _ => None,
        },
        // Tags (6) do not occur in WebAuthn structures.
        _ => None,
    }
}

// ---- Authenticator data (§6.1) ----

#[derive(Debug, Clone, PartialEq)]
pub struct AuthenticatorData {
    pub rp_id_hash: [u8; 32],
    pub flags: u8,
    pub sign_count: u32,
    /// Present when the AT flag is set (registration).
    pub attested: Option<AttestedCredential>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttestedCredential {
    pub aaguid: [u8; 16],
    pub credential_id: Vec<u8>,
    /// The credential public key, a COSE_Key, as the authenticator encoded it.
    pub public_key: Vec<u8>,
}

impl AuthenticatorData {
    pub fn user_present(&self) -> bool {
        self.flags & FLAG_UP != 0
    }
    pub fn user_verified(&self) -> bool {
        self.flags & FLAG_UV != 0
    }
    pub fn backup_eligible(&self) -> bool {
        self.flags & FLAG_BE != 0
    }
    pub fn backed_up(&self) -> bool {
        self.flags & FLAG_BS != 0
    }
}

pub fn parse_authenticator_data(data: &[u8]) -> Result<AuthenticatorData, Refusal> {
    if data.len() < 37 {
        return Err(Refusal::Malformed);
    }
    let rp_id_hash: [u8; 32] = data[..32].try_into().expect("32 bytes");
    let flags = data[32];
    let sign_count = u32::from_be_bytes(data[33..37].try_into().expect("4 bytes"));
    // §6.1: "BS … MUST be 0 if BE is 0".
    if flags & FLAG_BS != 0 && flags & FLAG_BE == 0 {
        return Err(Refusal::Malformed);
    }
    let mut rest = &data[37..];
    let attested = if flags & FLAG_AT != 0 {
        if rest.len() < 18 {
            return Err(Refusal::Malformed);
        }
        let aaguid: [u8; 16] = rest[..16].try_into().expect("16 bytes");
        let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        // §6.5.1: credentialIdLength at most 1023.
        if id_len > 1023 || rest.len() < 18 + id_len {
            return Err(Refusal::Malformed);
        }
        let credential_id = rest[18..18 + id_len].to_vec();
        rest = &rest[18 + id_len..];
        let (_, used) = cbor_item(rest).ok_or(Refusal::Malformed)?;
        let public_key = rest[..used].to_vec();
        rest = &rest[used..];
        Some(AttestedCredential {
            aaguid,
            credential_id,
            public_key,
        })
    } else {
        None
    };
    if flags & FLAG_ED != 0 {
        let (_, used) = cbor_item(rest).ok_or(Refusal::Malformed)?;
        rest = &rest[used..];
    }
    if !rest.is_empty() {
        return Err(Refusal::Malformed);
    }
    Ok(AuthenticatorData {
        rp_id_hash,
        flags,
        sign_count,
        attested,
    })
}

// ---- Public keys (COSE_Key, RFC 9052 §7 / RFC 9053) and signatures ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// P-256 point (uncompressed SEC1: 0x04 || x || y), ECDSA with SHA-256.
    Es256(Vec<u8>),
    Ed25519([u8; 32]),
    /// Modulus and exponent, big-endian; RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256 {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl PublicKey {
    pub fn alg(&self) -> i64 {
        match self {
            PublicKey::Es256(_) => ES256,
            PublicKey::Ed25519(_) => EDDSA,
            PublicKey::Rs256 { .. } => RS256,
        }
    }

    /// Whether `signature` is this key's over `message`. An ES256 signature is ASN.1 DER
    /// (§6.5.6, "signatures … MUST be DER encoded"), whose r and s may be shorter than 32
    /// bytes: the DER parser takes them as integers, so no padding is guessed here.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Es256(point) => {
                use p256::ecdsa::signature::Verifier;
                let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
                    return false;
                };
                let Ok(sig) = p256::ecdsa::Signature::from_der(signature) else {
                    return false;
                };
                key.verify(message, &sig).is_ok()
            }
            PublicKey::Ed25519(bytes) => {
                let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(bytes) else {
                    return false;
                };
                let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                key.verify_strict(message, &sig).is_ok()
            }
            PublicKey::Rs256 { n, e } => {
                use rsa::signature::Verifier;
                let Ok(key) = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(n),
                    rsa::BigUint::from_bytes_be(e),
                ) else {
                    return false;
                };
                let key = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key);
                let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
                    return false;
                };
                key.verify(message, &sig).is_ok()
            }
        }
    }
}

/// The key in a COSE_Key, if it is one of the three algorithms Clavex verifies.
pub fn parse_cose_key(bytes: &[u8]) -> Result<PublicKey, Refusal> {
    let (key, used) = cbor_item(bytes).ok_or(Refusal::Malformed)?;
    if used != bytes.len() {
        return Err(Refusal::Malformed);
    }
    let int = |k: i128| key.int_key(k).and_then(Cbor::as_int);
    let bytes_of = |k: i128| key.int_key(k).and_then(Cbor::as_bytes);
    let (Some(kty), Some(alg)) = (int(1), int(3)) else {
        return Err(Refusal::Malformed);
    };
    match (kty, alg) {
        // EC2, ES256, crv P-256 (1).
        (2, -7) => {
            let (Some(1), Some(x), Some(y)) = (int(-1), bytes_of(-2), bytes_of(-3)) else {
                return Err(Refusal::UnsupportedAlgorithm);
            };
            if x.len() != 32 || y.len() != 32 {
                return Err(Refusal::Malformed);
            }
            let mut point = vec![4u8];
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| Refusal::Malformed)?;
            Ok(PublicKey::Es256(point))
        }
        // OKP, EdDSA, crv Ed25519 (6).
        (1, -8) => {
            let (Some(6), Some(x)) = (int(-1), bytes_of(-2)) else {
                return Err(Refusal::UnsupportedAlgorithm);
            };
            let x: [u8; 32] = x.try_into().map_err(|_| Refusal::Malformed)?;
            ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| Refusal::Malformed)?;
            Ok(PublicKey::Ed25519(x))
        }
        // RSA, RS256: at least 2048-bit moduli.
        (3, -257) => {
            let (Some(n), Some(e)) = (bytes_of(-1), bytes_of(-2)) else {
                return Err(Refusal::Malformed);
            };
            let n = strip_zeros(n);
            if n.len() < 256 || n.len() > 512 || e.is_empty() || e.len() > 8 {
                return Err(Refusal::UnsupportedAlgorithm);
            }
            Ok(PublicKey::Rs256 {
                n: n.to_vec(),
                e: strip_zeros(e).to_vec(),
            })
        }
        _ => Err(Refusal::UnsupportedAlgorithm),
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[start..]
}

// ---- Client data (§5.8.1) ----

#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default, rename = "crossOrigin")]
    cross_origin: Option<bool>,
}

/// §7.1 steps 7–10 / §7.2 steps 11–14: the type, the challenge (base64url of the bytes the
/// server chose), the origin exactly, and not from a cross-origin iframe.
fn check_client_data(
    json: &[u8],
    kind: &str,
    challenge: &[u8],
    origin: &str,
) -> Result<(), Refusal> {
    let data: ClientData = serde_json::from_slice(json).map_err(|_| Refusal::Malformed)?;
    if data.kind != kind {
        return Err(Refusal::WrongType);
    }
    let sent = b64url_decode(&data.challenge).ok_or(Refusal::WrongChallenge)?;
    if challenge.is_empty() || !crate::crypto::secure_eq(&b64url(&sent), &b64url(challenge)) {
        return Err(Refusal::WrongChallenge);
    }
    if data.origin != origin {
        return Err(Refusal::WrongOrigin);
    }
    if data.cross_origin == Some(true) {
        return Err(Refusal::CrossOrigin);
    }
    Ok(())
}

/// §7.1 step 13 / §7.2 step 15, then UP (step 14/16) and, where required, UV.
fn check_authenticator(
    data: &AuthenticatorData,
    rp_id: &str,
    require_uv: bool,
) -> Result<(), Refusal> {
    if data.rp_id_hash != sha256(rp_id.as_bytes()) {
        return Err(Refusal::WrongRpId);
    }
    if !data.user_present() {
        return Err(Refusal::NoUserPresence);
    }
    if require_uv && !data.user_verified() {
        return Err(Refusal::NoUserVerification);
    }
    Ok(())
}

// ---- Registration (§7.1) ----

pub struct Registration<'a> {
    pub client_data_json: &'a [u8],
    pub attestation_object: &'a [u8],
    /// The credential id the browser reported (`rawId`): must be the attested one.
    pub raw_id: &'a [u8],
    pub challenge: &'a [u8],
    pub origin: &'a str,
    pub rp_id: &'a str,
    pub require_uv: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewCredential {
    pub credential_id: Vec<u8>,
    /// The COSE_Key as sent: what is stored, and parsed again at each sign-in.
    pub public_key: Vec<u8>,
    pub alg: i64,
    pub sign_count: u32,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub aaguid: [u8; 16],
}

pub fn verify_registration(r: &Registration) -> Result<NewCredential, Refusal> {
    check_client_data(r.client_data_json, "webauthn.create", r.challenge, r.origin)?;
    let (object, used) = cbor_item(r.attestation_object).ok_or(Refusal::Malformed)?;
    if used != r.attestation_object.len() {
        return Err(Refusal::Malformed);
    }
    let fmt = match object.text_key("fmt") {
        Some(Cbor::Text(f)) => f.as_str(),
        _ => return Err(Refusal::Malformed),
    };
    let auth_bytes = object
        .text_key("authData")
        .and_then(Cbor::as_bytes)
        .ok_or(Refusal::Malformed)?;
    let statement = object.text_key("attStmt").ok_or(Refusal::Malformed)?;
    let data = parse_authenticator_data(auth_bytes)?;
    check_authenticator(&data, r.rp_id, r.require_uv)?;
    let attested = data.attested.as_ref().ok_or(Refusal::NoCredentialData)?;
    if attested.credential_id != r.raw_id {
        return Err(Refusal::CredentialIdMismatch);
    }
    let key = parse_cose_key(&attested.public_key)?;
    match fmt {
        // §8.7: "none" carries an empty statement.
        "none" => {
            if statement != &Cbor::Map(Vec::new()) {
                return Err(Refusal::Malformed);
            }
        }
        // §8.2 self attestation: no x5c, alg equal to the credential's, sig by the credential
        // key over authenticatorData || clientDataHash.
        "packed" => {
            if statement.text_key("x5c").is_some() {
                return Err(Refusal::UnsupportedAttestation);
            }
            let alg = statement.text_key("alg").and_then(Cbor::as_int);
            if alg != Some(i128::from(key.alg())) {
                return Err(Refusal::UnsupportedAttestation);
            }
            let sig = statement
                .text_key("sig")
                .and_then(Cbor::as_bytes)
                .ok_or(Refusal::Malformed)?;
            let mut signed = auth_bytes.to_vec();
            signed.extend_from_slice(&sha256(r.client_data_json));
            if !key.verify(&signed, sig) {
                return Err(Refusal::BadSignature);
            }
        }
        _ => return Err(Refusal::UnsupportedAttestation),
    }
    Ok(NewCredential {
        credential_id: attested.credential_id.clone(),
        public_key: attested.public_key.clone(),
        alg: key.alg(),
        sign_count: data.sign_count,
        user_verified: data.user_verified(),
        backup_eligible: data.backup_eligible(),
        backed_up: data.backed_up(),
        aaguid: attested.aaguid,
    })
}

// ---- Authentication (§7.2) ----

pub struct Assertion<'a> {
    pub client_data_json: &'a [u8],
    pub authenticator_data: &'a [u8],
    pub signature: &'a [u8],
    pub challenge: &'a [u8],
    pub origin: &'a str,
    pub rp_id: &'a str,
    /// The stored COSE_Key of the credential the browser named.
    pub public_key: &'a [u8],
    pub stored_sign_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asserted {
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub sign_count: u32,
    /// §7.2 step 21: "If either authData.signCount or storedSignCount is nonzero, and
    /// authData.signCount is less than or equal to storedSignCount … the authenticator may be
    /// cloned". Reported, not refused (the caller's choice, see oidc/passkeys.rs).
    pub counter_regressed: bool,
}

pub fn verify_assertion(a: &Assertion) -> Result<Asserted, Refusal> {
    check_client_data(a.client_data_json, "webauthn.get", a.challenge, a.origin)?;
    let data = parse_authenticator_data(a.authenticator_data)?;
    check_authenticator(&data, a.rp_id, false)?;
    let key = parse_cose_key(a.public_key)?;
    let mut signed = a.authenticator_data.to_vec();
    signed.extend_from_slice(&sha256(a.client_data_json));
    if !key.verify(&signed, a.signature) {
        return Err(Refusal::BadSignature);
    }
    let counter_regressed = (data.sign_count != 0 || a.stored_sign_count != 0)
        && data.sign_count <= a.stored_sign_count;
    Ok(Asserted {
        user_verified: data.user_verified(),
        backup_eligible: data.backup_eligible(),
        backed_up: data.backed_up(),
        sign_count: data.sign_count,
        counter_regressed,
    })
}

// ---- Names ----

/// A passkey's default name from its authenticator's AAGUID (the community list
/// passkeydeveloper/passkey-authenticator-aaguids); "Passkey" for others (and for the all-zero
/// AAGUID that `none` attestation often carries).
pub fn name_for(aaguid: &[u8; 16]) -> &'static str {
    const KNOWN: &[(&str, &str)] = &[
        ("fbfc3007154e4ecc8c0b6e020557d7bd", "iCloud Keychain"),
        (
            "dd4ec289e01d41c9bb8970fa845d4bf2",
            "iCloud Keychain (Managed)",
        ),
        (
            "ea9b8d664d011d213ce4b6b48cb575d4",
            "Google Password Manager",
        ),
        ("adce000235bcc60a648b0b25f1f05503", "Chrome on Mac"),
        ("08987058cadc4b81b6e130de50dcbe96", "Windows Hello"),
        ("9ddd1817af5a4672a2b93e3dd95000a9", "Windows Hello"),
        ("6028b017b1d44c02b4b3afcdafc96bb2", "Windows Hello"),
        ("bada5566a7aa401fbd9645619a55120d", "1Password"),
        ("d548826e79b4db40a3d811116f7e8349", "Bitwarden"),
        ("531126d6e717415c93203d9aa6981239", "Dashlane"),
        ("b84e404815dc4dd08640f4f60813c8af", "NordPass"),
        ("0ea242b443c44a1b8b17dd6d0b6baec6", "Keeper"),
        ("53414d53554e47000000000000000000", "Samsung Pass"),
    ];
    let hex = crate::crypto::hex(aaguid);
    KNOWN
        .iter()
        .find(|(id, _)| *id == hex)
        .map(|(_, name)| *name)
        .unwrap_or("Passkey")
}

/// The AAGUID as the usual 8-4-4-4-12 text.
pub fn aaguid_text(aaguid: &[u8; 16]) -> String {
    let h = crate::crypto::hex(aaguid);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A name a user typed: trimmed, control characters removed, at most 64 characters; `None`
/// when nothing is left.
pub fn clean_name(typed: &str) -> Option<String> {
    let cleaned: String = typed
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let cleaned = cleaned.trim().to_string();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// The RP ID: the host of the public base URL (§5.1.4.1 "effective domain"; an IP address can
/// never be one, which is why tests use `localhost`). The origin a browser reports is that
/// URL's origin exactly.
pub fn rp_id_of(base_url: &str) -> Option<String> {
    url::Url::parse(base_url)
        .ok()?
        .host_str()
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
#[path = "webauthn_tests.rs"]
mod tests;
