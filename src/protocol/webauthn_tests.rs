//! Vectors made here with real keys: P-256 and Ed25519 signing keys from fixed seeds, and an
//! RS256 signature made once with Node's crypto (2048-bit key; n, e and the signature below).

use super::*;
use ed25519_dalek::Signer as _;

const RSA_N: &str = "b897378f23ae7c224581bdcee7d31124c7fb7f7471b1299aba518deba29ae617cf3a2d05c89ac225f3578cace3e3b76c2a9156259584e7c54fcdc473974d6b355e14c387af711c82a90cfa57fb449e2862b292ed7a76b54129bdfb4372190c8bbb612d9faad3999c24daa2e45a5bbcf2ef061ce21811d3d8289d94aeaa88a51247c8b18703eadf5195eef54b0402d4b1dc00af2877139a8925ae2120879199e619ac19bcfaec9ad27d76637cf9eec98743cfb6f4d2a9f79bb856600655cd3d558d0f3dc5c68f4b5b277bfa9bd7cba6d4d3311a6ff0b469e1e5723671c5f8c478a7f781b7af965bdf76861fb4b164bd6af4cda34bebe47597160c6679d87b1381";
const RSA_E: &str = "010001";
const RSA_MESSAGE: &[u8] = b"clavex rs256 vector: authenticatorData || SHA-256(clientDataJSON)";
const RSA_SIG: &str = "127aa6df1bc7200a550f8e9f7674713e7512e4a76874d8ad22c8d482d16220c3beea379c0446deb3b1e5e611925a0be0bcb87e594e0b3eceba58af6afc42927c4e875191fee1c9d155814dc2aca4e64a8785bb283399337b605163bf185f3e5d754cd66202377c68b0a366fe015f984b50d53da4fa6aed9430ae74cdacb718478f85340a7247dbfc9b0627f787867783736a67dc05dffb4ec049b18537a193d2ea04404d37ddad74a196dd4a797fdaff7e3a514bb5dbbf1be120f6642087e43f0bcb1453f4ac5889cde2dd0090e30ce23bd1903bc7ebe1dc1357441c57386fa7554067a0ebedcedc751763e61198e72c50424853c91ff08b45c5f78beb7a421c";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A small canonical CBOR encoder, for building what an authenticator would send.
#[derive(Clone)]
enum E {
    I(i64),
    B(Vec<u8>),
    T(&'static str),
    M(Vec<(E, E)>),
}

fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n < 256 {
        out.extend([m | 24, n as u8]);
    } else if n < 65536 {
        out.push(m | 25);
        out.extend((n as u16).to_be_bytes());
    } else {
        out.push(m | 26);
        out.extend((n as u32).to_be_bytes());
    }
}

fn enc(e: &E) -> Vec<u8> {
    let mut out = Vec::new();
    match e {
        E::I(i) if *i >= 0 => head(0, *i as u64, &mut out),
        E::I(i) => head(1, (-1 - *i) as u64, &mut out),
        E::B(b) => {
            head(2, b.len() as u64, &mut out);
            out.extend(b);
        }
        E::T(t) => {
            head(3, t.len() as u64, &mut out);
            out.extend(t.as_bytes());
        }
        E::M(entries) => {
            head(5, entries.len() as u64, &mut out);
            for (k, v) in entries {
                out.extend(enc(k));
                out.extend(enc(v));
            }
        }
    }
    out
}

const RP: &str = "id.acme.eu";
const ORIGIN: &str = "https://id.acme.eu";
const CHALLENGE: &[u8] = b"0123456789abcdef0123456789abcdef";

fn p256_key(seed: u8) -> p256::ecdsa::SigningKey {
    let mut bytes = [7u8; 32];
    bytes[0] = seed;
    p256::ecdsa::SigningKey::from_bytes(&bytes.into()).unwrap()
}

fn es256_cose(key: &p256::ecdsa::SigningKey) -> Vec<u8> {
    let point = key.verifying_key().to_encoded_point(false);
    enc(&E::M(vec![
        (E::I(1), E::I(2)),
        (E::I(3), E::I(-7)),
        (E::I(-1), E::I(1)),
        (E::I(-2), E::B(point.x().unwrap().to_vec())),
        (E::I(-3), E::B(point.y().unwrap().to_vec())),
    ]))
}

fn ed_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])
}

fn ed_cose(key: &ed25519_dalek::SigningKey) -> Vec<u8> {
    enc(&E::M(vec![
        (E::I(1), E::I(1)),
        (E::I(3), E::I(-8)),
        (E::I(-1), E::I(6)),
        (E::I(-2), E::B(key.verifying_key().to_bytes().to_vec())),
    ]))
}

fn rsa_cose() -> Vec<u8> {
    enc(&E::M(vec![
        (E::I(1), E::I(3)),
        (E::I(3), E::I(-257)),
        (E::I(-1), E::B(unhex(RSA_N))),
        (E::I(-2), E::B(unhex(RSA_E))),
    ]))
}

fn client_data(kind: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"{kind}","challenge":"{}","origin":"{origin}","crossOrigin":false}}"#,
        b64url(challenge)
    )
    .into_bytes()
}

fn auth_data(rp: &str, flags: u8, count: u32, attested: Option<(&[u8], &[u8])>) -> Vec<u8> {
    let mut out = sha256(rp.as_bytes()).to_vec();
    out.push(flags | if attested.is_some() { FLAG_AT } else { 0 });
    out.extend(count.to_be_bytes());
    if let Some((id, key)) = attested {
        out.extend(unhex("fbfc3007154e4ecc8c0b6e020557d7bd"));
        out.extend((id.len() as u16).to_be_bytes());
        out.extend(id);
        out.extend(key);
    }
    out
}

fn none_attestation(auth: &[u8]) -> Vec<u8> {
    enc(&E::M(vec![
        (E::T("fmt"), E::T("none")),
        (E::T("attStmt"), E::M(vec![])),
        (E::T("authData"), E::B(auth.to_vec())),
    ]))
}

fn register(cdj: &[u8], att: &[u8], id: &[u8]) -> Result<NewCredential, Refusal> {
    verify_registration(&Registration {
        client_data_json: cdj,
        attestation_object: att,
        raw_id: id,
        challenge: CHALLENGE,
        origin: ORIGIN,
        rp_id: RP,
        require_uv: false,
    })
}

#[test]
fn registration_with_none_attestation() {
    let key = p256_key(1);
    let cose = es256_cose(&key);
    let id = b"credential-1";
    let auth = auth_data(RP, FLAG_UP | FLAG_UV | FLAG_BE, 0, Some((id, &cose)));
    let cdj = client_data("webauthn.create", CHALLENGE, ORIGIN);
    let got = register(&cdj, &none_attestation(&auth), id).unwrap();
    assert_eq!(got.credential_id, id);
    assert_eq!(got.public_key, cose);
    assert_eq!(got.alg, ES256);
    assert!(got.user_verified && got.backup_eligible && !got.backed_up);
    assert_eq!(name_for(&got.aaguid), "iCloud Keychain");
    assert_eq!(
        aaguid_text(&got.aaguid),
        "fbfc3007-154e-4ecc-8c0b-6e020557d7bd"
    );

    let bad = |cdj: &[u8], auth: &[u8]| register(cdj, &none_attestation(auth), id);
    let other_origin = client_data("webauthn.create", CHALLENGE, "https://evil.example");
    assert_eq!(bad(&other_origin, &auth), Err(Refusal::WrongOrigin));
    let get = client_data("webauthn.get", CHALLENGE, ORIGIN);
    assert_eq!(bad(&get, &auth), Err(Refusal::WrongType));
    let other_challenge = client_data("webauthn.create", b"another", ORIGIN);
    assert_eq!(bad(&other_challenge, &auth), Err(Refusal::WrongChallenge));
    let other_rp = auth_data("evil.example", FLAG_UP, 0, Some((id, &cose)));
    assert_eq!(bad(&cdj, &other_rp), Err(Refusal::WrongRpId));
    let absent = auth_data(RP, FLAG_UV, 0, Some((id, &cose)));
    assert_eq!(bad(&cdj, &absent), Err(Refusal::NoUserPresence));
    assert_eq!(
        register(&cdj, &none_attestation(&auth), b"another id"),
        Err(Refusal::CredentialIdMismatch)
    );
    let no_key = auth_data(RP, FLAG_UP, 0, None);
    assert_eq!(bad(&cdj, &no_key), Err(Refusal::NoCredentialData));
}

#[test]
fn packed_self_attestation_is_verified_and_certificates_are_refused() {
    let key = p256_key(2);
    let cose = es256_cose(&key);
    let id = b"credential-2";
    let auth = auth_data(RP, FLAG_UP, 5, Some((id, &cose)));
    let cdj = client_data("webauthn.create", CHALLENGE, ORIGIN);
    let mut signed = auth.clone();
    signed.extend(sha256(&cdj));
    let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&key, &signed);
    let packed = |sig: Vec<u8>, extra: Option<(E, E)>| {
        let mut stmt = vec![(E::T("alg"), E::I(-7)), (E::T("sig"), E::B(sig))];
        stmt.extend(extra);
        enc(&E::M(vec![
            (E::T("fmt"), E::T("packed")),
            (E::T("attStmt"), E::M(stmt)),
            (E::T("authData"), E::B(auth.clone())),
        ]))
    };
    let der = sig.to_der().as_bytes().to_vec();
    assert_eq!(
        register(&cdj, &packed(der.clone(), None), id)
            .unwrap()
            .sign_count,
        5
    );
    let mut wrong = der.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    assert_eq!(
        register(&cdj, &packed(wrong, None), id),
        Err(Refusal::BadSignature)
    );
    let x5c = (E::T("x5c"), E::B(vec![1, 2, 3]));
    assert_eq!(
        register(&cdj, &packed(der, Some(x5c)), id),
        Err(Refusal::UnsupportedAttestation)
    );
    let fido = enc(&E::M(vec![
        (E::T("fmt"), E::T("fido-u2f")),
        (E::T("attStmt"), E::M(vec![])),
        (E::T("authData"), E::B(auth.clone())),
    ]));
    assert_eq!(
        register(&cdj, &fido, id),
        Err(Refusal::UnsupportedAttestation)
    );
}

fn assert_with(
    cose: &[u8],
    auth: &[u8],
    cdj: &[u8],
    sig: &[u8],
    stored: u32,
) -> Result<Asserted, Refusal> {
    verify_assertion(&Assertion {
        client_data_json: cdj,
        authenticator_data: auth,
        signature: sig,
        challenge: CHALLENGE,
        origin: ORIGIN,
        rp_id: RP,
        public_key: cose,
        stored_sign_count: stored,
    })
}

fn signed_by(key: &p256::ecdsa::SigningKey, auth: &[u8], cdj: &[u8]) -> Vec<u8> {
    let mut m = auth.to_vec();
    m.extend(sha256(cdj));
    let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(key, &m);
    sig.to_der().as_bytes().to_vec()
}

#[test]
fn es256_assertions_and_every_check() {
    let key = p256_key(3);
    let cose = es256_cose(&key);
    let cdj = client_data("webauthn.get", CHALLENGE, ORIGIN);
    let auth = auth_data(RP, FLAG_UP | FLAG_UV, 7, None);
    let sig = signed_by(&key, &auth, &cdj);
    let ok = assert_with(&cose, &auth, &cdj, &sig, 6).unwrap();
    assert!(ok.user_verified && !ok.counter_regressed && ok.sign_count == 7);
    // The counter: equal or lower than stored is a regression; zero/zero is not.
    assert!(
        assert_with(&cose, &auth, &cdj, &sig, 7)
            .unwrap()
            .counter_regressed
    );
    let zero = auth_data(RP, FLAG_UP, 0, None);
    let zsig = signed_by(&key, &zero, &cdj);
    assert!(
        !assert_with(&cose, &zero, &cdj, &zsig, 0)
            .unwrap()
            .counter_regressed
    );
    assert!(
        assert_with(&cose, &zero, &cdj, &zsig, 3)
            .unwrap()
            .counter_regressed
    );
    // Another key's signature, a signature over other data.
    let other = signed_by(&p256_key(4), &auth, &cdj);
    assert_eq!(
        assert_with(&cose, &auth, &cdj, &other, 0),
        Err(Refusal::BadSignature)
    );
    let cdj2 = client_data("webauthn.get", CHALLENGE, "https://id.acme.eu:8443");
    assert_eq!(
        assert_with(&cose, &auth, &cdj2, &sig, 0),
        Err(Refusal::WrongOrigin)
    );
    let wrong_rp = auth_data("acme.eu", FLAG_UP, 7, None);
    let s = signed_by(&key, &wrong_rp, &cdj);
    assert_eq!(
        assert_with(&cose, &wrong_rp, &cdj, &s, 0),
        Err(Refusal::WrongRpId)
    );
    let no_up = auth_data(RP, FLAG_UV, 7, None);
    let s = signed_by(&key, &no_up, &cdj);
    assert_eq!(
        assert_with(&cose, &no_up, &cdj, &s, 0),
        Err(Refusal::NoUserPresence)
    );
    let create = client_data("webauthn.create", CHALLENGE, ORIGIN);
    let s = signed_by(&key, &auth, &create);
    assert_eq!(
        assert_with(&cose, &auth, &create, &s, 0),
        Err(Refusal::WrongType)
    );
    let cross = br#"{"type":"webauthn.get","challenge":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY","origin":"https://id.acme.eu","crossOrigin":true}"#;
    let s = signed_by(&key, &auth, cross);
    assert_eq!(
        assert_with(&cose, &auth, cross, &s, 0),
        Err(Refusal::CrossOrigin)
    );
}

#[test]
fn es256_signatures_with_short_r_or_s_verify() {
    // DER drops leading zero bytes of r and s: a signature whose r or s is below 2^248 is
    // shorter than 70 bytes. About 1 in 128 signatures; search deterministic ones until both a
    // short r and a short s have been seen and verified.
    let key = p256_key(5);
    let cose = es256_cose(&key);
    let cdj = client_data("webauthn.get", CHALLENGE, ORIGIN);
    let (mut short_r, mut short_s) = (false, false);
    for count in 1..20_000u32 {
        let auth = auth_data(RP, FLAG_UP, count, None);
        let mut m = auth.clone();
        m.extend(sha256(&cdj));
        let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&key, &m);
        let bytes = sig.to_bytes();
        let r_short = bytes[0] == 0;
        let s_short = bytes[32] == 0;
        if !(r_short || s_short) {
            continue;
        }
        let der = sig.to_der().as_bytes().to_vec();
        assert!(der.len() < 72, "{}", der.len());
        assert!(assert_with(&cose, &auth, &cdj, &der, 0).is_ok());
        short_r |= r_short;
        short_s |= s_short;
        if short_r && short_s {
            return;
        }
    }
    panic!("no short r and s found");
}

#[test]
fn eddsa_assertions() {
    let key = ed_key();
    let cose = ed_cose(&key);
    assert_eq!(parse_cose_key(&cose).unwrap().alg(), EDDSA);
    let cdj = client_data("webauthn.get", CHALLENGE, ORIGIN);
    let auth = auth_data(RP, FLAG_UP | FLAG_UV | FLAG_BE | FLAG_BS, 0, None);
    let mut m = auth.clone();
    m.extend(sha256(&cdj));
    let sig = key.sign(&m).to_bytes();
    let ok = assert_with(&cose, &auth, &cdj, &sig, 0).unwrap();
    assert!(ok.backup_eligible && ok.backed_up && ok.user_verified);
    let mut bad = sig;
    bad[10] ^= 0x80;
    assert_eq!(
        assert_with(&cose, &auth, &cdj, &bad, 0),
        Err(Refusal::BadSignature)
    );
}

#[test]
fn rs256_vector_from_node() {
    let key = parse_cose_key(&rsa_cose()).unwrap();
    assert_eq!(key.alg(), RS256);
    let sig = unhex(RSA_SIG);
    assert!(key.verify(RSA_MESSAGE, &sig));
    assert!(!key.verify(b"another message", &sig));
    let mut bad = sig.clone();
    bad[0] ^= 1;
    assert!(!key.verify(RSA_MESSAGE, &bad));
    // A 1024-bit modulus is refused.
    let small = enc(&E::M(vec![
        (E::I(1), E::I(3)),
        (E::I(3), E::I(-257)),
        (E::I(-1), E::B(vec![0xc5; 128])),
        (E::I(-2), E::B(vec![1, 0, 1])),
    ]));
    assert_eq!(parse_cose_key(&small), Err(Refusal::UnsupportedAlgorithm));
}

#[test]
fn flags_and_malformed_data() {
    let d = parse_authenticator_data(&auth_data(RP, FLAG_UP | FLAG_BE | FLAG_BS, 9, None)).unwrap();
    assert!(d.user_present() && !d.user_verified() && d.backup_eligible() && d.backed_up());
    assert_eq!(d.sign_count, 9);
    // BS without BE is invalid (§6.1); short data; trailing bytes.
    assert!(parse_authenticator_data(&auth_data(RP, FLAG_UP | FLAG_BS, 0, None)).is_err());
    assert!(parse_authenticator_data(&[0; 36]).is_err());
    let mut trailing = auth_data(RP, FLAG_UP, 0, None);
    trailing.push(0);
    assert!(parse_authenticator_data(&trailing).is_err());
    // CBOR: indefinite lengths, absurd lengths and deep nesting are refused, never panic.
    assert!(cbor_item(&[0x5f]).is_none());
    assert!(cbor_item(&[0x5a, 0xff, 0xff, 0xff, 0xff]).is_none());
    assert!(cbor_item(&[0x81; 40]).is_none());
    assert_eq!(cbor_item(&[0x20]), Some((Cbor::Int(-1), 1)));
    // An unknown algorithm (ES384) is refused.
    let es384 = enc(&E::M(vec![(E::I(1), E::I(2)), (E::I(3), E::I(-35))]));
    assert_eq!(parse_cose_key(&es384), Err(Refusal::UnsupportedAlgorithm));
}

#[test]
fn names_and_rp_ids() {
    assert_eq!(name_for(&[0; 16]), "Passkey");
    assert_eq!(clean_name("  My\u{7} key  ").as_deref(), Some("My key"));
    assert_eq!(clean_name("   "), None);
    assert_eq!(clean_name(&"x".repeat(100)).unwrap().len(), 64);
    assert_eq!(
        rp_id_of("https://ID.acme.eu/").as_deref(),
        Some("id.acme.eu")
    );
    assert_eq!(
        rp_id_of("http://localhost:8787").as_deref(),
        Some("localhost")
    );
}

proptest::proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = cbor_item(&bytes);
        let _ = parse_authenticator_data(&bytes);
        let _ = parse_cose_key(&bytes);
    }
}
