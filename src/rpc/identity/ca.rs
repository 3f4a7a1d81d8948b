//! The env CAs: the derived CA of (env, secret), PEM CAs written by [`init_ca`] and read
//! back (several files, or bundles), the CA key that signs minted leaves, and minting a
//! leaf for this process.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ED25519, SanType, date_time_ymd,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use sha2::Sha256;

use crate::rpc::identity::files::{
    MAX_PEM_FILE_BYTES, fingerprint, read_bounded, refuse_existing, warn_if_key_file_is_open,
    write_new_file,
};
use crate::rpc::identity::uri::{Holder, WerifyUri, ca_uri, leaf_uri, werify_uri_of};
use crate::rpc::identity::{Env, IdentityError};

/// HKDF salt for the derived CA; bump the version to change every derived CA at once.
const DERIVED_CA_SALT: &[u8] = b"werify-ca-v1";
/// HKDF info for the derived CA's Ed25519 seed.
const DERIVED_CA_INFO: &[u8] = b"ed25519-ca-seed";
/// PKCS#8 v1 wrapper for a raw 32-byte Ed25519 seed (RFC 8410): everything before the seed.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// File name of the CA certificate written by [`init_ca`].
pub const CA_CERT_FILE: &str = "ca.crt.pem";
/// File name of the CA private key written by [`init_ca`].
pub const CA_KEY_FILE: &str = "ca.key.pem";

/// What [`init_ca`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaFiles {
    /// Path of `ca.crt.pem`.
    pub cert: PathBuf,
    /// Path of `ca.key.pem` (mode 0600).
    pub key: PathBuf,
    /// SHA-256 of the CA certificate (DER), hex, as
    /// [`crate::rpc::identity::Identity::ca_fingerprint`] shows it.
    pub fingerprint: String,
}

/// Writes a fresh random CA for `env` into `out_dir` (created if missing) as `ca.crt.pem`
/// and `ca.key.pem` (mode 0600). Refuses to overwrite either file unless `force`.
pub fn init_ca(env: &Env, out_dir: &Path, force: bool) -> Result<CaFiles, IdentityError> {
    let cert_path = out_dir.join(CA_CERT_FILE);
    let key_path = out_dir.join(CA_KEY_FILE);
    refuse_existing(&[&cert_path, &key_path], force)?;
    std::fs::create_dir_all(out_dir).map_err(|source| IdentityError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;

    let key = KeyPair::generate_for(&PKCS_ED25519)?;
    let cert = ca_params(env).self_signed(&key)?;

    // The key first: if it cannot be written, no certificate without a key is left behind.
    write_new_file(&key_path, key.serialize_pem().as_bytes(), 0o600, force)?;
    write_new_file(&cert_path, cert.pem().as_bytes(), 0o644, force)?;
    Ok(CaFiles {
        cert: cert_path,
        key: key_path,
        fingerprint: fingerprint(cert.der()),
    })
}

/// The fixed CA parameters for `env`. Every field is a constant or derived from `env`, so
/// the same key gives the byte-identical certificate on every node.
pub(crate) fn ca_params(env: &Env) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "werify");
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, env.as_str());
    params
        .distinguished_name
        .push(DnType::CommonName, format!("werify env CA {env}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // Env tags are [a-z0-9-], so the URI is always valid IA5; the fallback is unreachable.
    if let Ok(uri) = ca_uri(env).try_into() {
        params.subject_alt_names = vec![SanType::URI(uri)];
    }
    params
}

/// The derived CA for (env, secret): its issuer (with key) and certificate.
pub(crate) fn derived_ca(
    env: &Env,
    secret: &[u8],
) -> Result<(Issuer<'static, KeyPair>, CertificateDer<'static>), IdentityError> {
    let seed = derive_ca_seed(env, secret);
    let mut pkcs8 = Vec::with_capacity(ED25519_PKCS8_V1_PREFIX.len() + seed.len());
    pkcs8.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
    pkcs8.extend_from_slice(&seed);
    let key =
        KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(pkcs8), &PKCS_ED25519)?;
    let params = ca_params(env);
    let cert = params.self_signed(&key)?;
    Ok((Issuer::new(params, key), cert.der().clone()))
}

/// HKDF-SHA256(salt `werify-ca-v1`, ikm = len(env) ‖ env ‖ len(secret) ‖ secret,
/// info `ed25519-ca-seed`), lengths as u32 big-endian so (env, secret) splits are unambiguous.
fn derive_ca_seed(env: &Env, secret: &[u8]) -> [u8; 32] {
    let mut ikm = Vec::with_capacity(8 + env.as_str().len() + secret.len());
    for part in [env.as_str().as_bytes(), secret] {
        // Secrets are read through a 64 KiB cap; saturating keeps this total regardless.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        ikm.extend_from_slice(&len.to_be_bytes());
        ikm.extend_from_slice(part);
    }
    let hkdf = Hkdf::<Sha256>::new(Some(DERIVED_CA_SALT), &ikm);
    let mut seed = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte output limit, so this cannot fail.
    if hkdf.expand(DERIVED_CA_INFO, &mut seed).is_err() {
        unreachable!("32-byte HKDF-SHA256 output is always valid");
    }
    seed
}

/// One trusted PEM CA: its certificate, the env it names, its public key and its file.
pub(crate) struct CaCert {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) env: Env,
    pub(crate) public_key: Vec<u8>,
    pub(crate) path: PathBuf,
}

/// Reads every CA certificate in `paths` (each file may hold several); duplicates are
/// kept once. At least one path must be given and every file must hold a CA.
pub(crate) fn load_ca_certs(paths: &[PathBuf]) -> Result<Vec<CaCert>, IdentityError> {
    let mut cas: Vec<CaCert> = Vec::new();
    for path in paths {
        let bad_cert = |reason: String| IdentityError::BadCaCert {
            path: path.clone(),
            reason,
        };
        let pem = read_bounded(path, MAX_PEM_FILE_BYTES)?;
        let mut found = 0;
        for der in CertificateDer::pem_slice_iter(&pem) {
            let der = der.map_err(|e| bad_cert(format!("unreadable PEM ({e})")))?;
            found += 1;
            let (_, parsed) = x509_parser::parse_x509_certificate(&der)
                .map_err(|e| bad_cert(format!("cannot parse certificate: {e}")))?;
            if !parsed.is_ca() {
                return Err(bad_cert(
                    "it is not a CA certificate (certificate files of nodes and operators go \
                     with --cert)"
                        .to_string(),
                ));
            }
            let env = match werify_uri_of(&der).map_err(|e| bad_cert(e.to_string()))? {
                WerifyUri::Ca(env) => env,
                WerifyUri::Leaf { .. } => {
                    return Err(bad_cert(
                        "it is a leaf certificate, not a CA (expected URI werify://ENV/ca)"
                            .to_string(),
                    ));
                }
            };
            let public_key = parsed.public_key().subject_public_key.data.to_vec();
            if !cas.iter().any(|c| c.der == der) {
                cas.push(CaCert {
                    der: der.into_owned(),
                    env,
                    public_key,
                    path: path.clone(),
                });
            }
        }
        if found == 0 {
            return Err(bad_cert("no PEM CERTIFICATE block".to_string()));
        }
    }
    Ok(cas)
}

/// The one env all `cas` name; `given`, when set, must be it.
pub(crate) fn common_env(cas: &[CaCert], given: Option<&Env>) -> Result<Env, IdentityError> {
    let Some(first) = cas.first() else {
        return Err(IdentityError::BadCaCert {
            path: PathBuf::from("--ca-cert"),
            reason: "no CA certificate given".to_string(),
        });
    };
    if let Some(other) = cas.iter().find(|c| c.env != first.env) {
        return Err(IdentityError::CaEnvsDiffer {
            first: first.path.clone(),
            first_env: first.env.clone(),
            other: other.path.clone(),
            other_env: other.env.clone(),
        });
    }
    if let Some(given) = given
        && *given != first.env
    {
        return Err(IdentityError::EnvMismatch {
            path: first.path.clone(),
            given: given.clone(),
            ca: first.env.clone(),
        });
    }
    Ok(first.env.clone())
}

/// The CA key in `key_path` and the certificate among `cas` it belongs to.
pub(crate) fn load_ca_key(
    key_path: &Path,
    cas: &[CaCert],
    cert_paths: &[PathBuf],
) -> Result<(Issuer<'static, KeyPair>, CertificateDer<'static>), IdentityError> {
    warn_if_key_file_is_open(key_path);
    let key_pem = read_bounded(key_path, MAX_PEM_FILE_BYTES)?;
    let key_text = String::from_utf8(key_pem).map_err(|_| IdentityError::BadCaKey {
        path: key_path.to_path_buf(),
        reason: "it is not PEM text".to_string(),
    })?;
    let key = KeyPair::from_pem(&key_text).map_err(|e| IdentityError::BadCaKey {
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let Some(ca) = cas.iter().find(|c| c.public_key == key.public_key_raw()) else {
        return Err(IdentityError::KeyMismatch {
            certs: cert_paths.to_vec(),
            key: key_path.to_path_buf(),
        });
    };
    let issuer = Issuer::from_ca_cert_der(&ca.der, key).map_err(|e| IdentityError::BadCaCert {
        path: ca.path.clone(),
        reason: format!("cannot use it as issuer: {e}"),
    })?;
    Ok((issuer, ca.der.clone()))
}

/// Every CA of `cas`, `issuer` first.
pub(crate) fn trusted_with_issuer_first(
    cas: &[CaCert],
    issuer: &CertificateDer<'static>,
) -> Vec<CertificateDer<'static>> {
    std::iter::once(issuer.clone())
        .chain(cas.iter().map(|c| c.der.clone()).filter(|d| d != issuer))
        .collect()
}

/// The distinguished name of a werify leaf: organization `werify`, unit the env, common
/// name `common_name`.
pub(crate) fn leaf_name(env: &Env, common_name: &str) -> rcgen::DistinguishedName {
    let mut name = rcgen::DistinguishedName::new();
    name.push(DnType::OrganizationName, "werify");
    name.push(DnType::OrganizationalUnitName, env.as_str());
    name.push(DnType::CommonName, common_name);
    name
}

/// Mints this process's leaf: a fresh Ed25519 key, signed by the env CA.
///
/// Validity is the CA's fixed 2024..2100 window rather than "now ± a bit": the key never
/// leaves this process's memory and dies with it, while anyone holding the CA key could
/// mint leaves anyway, so a short expiry would only add an outage for processes that run
/// longer than it, and rejections between hosts with skewed clocks.
pub(crate) fn mint_leaf(
    env: &Env,
    issuer: &Issuer<'static, KeyPair>,
    holder: &Holder,
    ips: &[IpAddr],
) -> Result<(CertificateDer<'static>, PrivatePkcs8KeyDer<'static>), IdentityError> {
    let mut params = CertificateParams::default();
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
    let id = match holder {
        Holder::Node(id) | Holder::Client(id) => id.to_string(),
        Holder::Operator(name) => name.clone(),
    };
    params.distinguished_name = leaf_name(env, &id);
    let mut sans: Vec<SanType> = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    sans.push(SanType::URI(leaf_uri(env, holder).try_into()?));
    sans.push(SanType::DnsName(format!("{id}.{env}.werify").try_into()?));
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;

    let key = KeyPair::generate_for(&PKCS_ED25519)?;
    let cert = params.signed_by(&key, issuer)?;
    let key_der = PrivatePkcs8KeyDer::from(key.serialize_der());
    Ok((cert.der().clone(), key_der))
}
