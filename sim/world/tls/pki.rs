//! The run's certificates, made from the seed: a CA, the aggregator's leaf for the name the
//! agents dial, a leaf that expires at a given moment, a second ("wrong") CA with its own
//! leaf for the same name, and a leaf of the right CA for another name.
//!
//! Why from the seed: the same seed must give the same bytes on the wire (ARCHITECTURE.md
//! §2), and a certificate is on the wire. Every key is Ed25519 from 32 seeded bytes (Ed25519
//! signing is deterministic, unlike ECDSA's nonce), every serial number is explicit, and
//! validity counts from the world's epoch, so the DER of every certificate is a pure function
//! of (seed, epoch, name).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::world::Seed;

/// PKCS#8 v1 (RFC 8410 §7) of an Ed25519 private key: this fixed prefix, then the 32-byte
/// seed of the key.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// Certificates become valid a day before the world's epoch, so a clock skewed a little
/// behind does not find them "not yet valid".
const NOT_BEFORE_MARGIN_SECS: i64 = 24 * 3600;

/// `not_after` of a certificate no fault expires: 9999-12-31T23:59:59Z (RFC 5280 §4.1.2.5's
/// "no well-defined expiration date").
const NOT_AFTER_NEVER_UNIX_SECS: i64 = 253_402_300_799;

/// The name the wrong-name leaf is issued for: not the aggregator's.
pub const WRONG_NAME: &str = "not-the-aggregator.invalid";

/// Why the PKI could not be made (a name rcgen refuses, a time out of X.509's range).
#[derive(Debug)]
pub struct PkiError(pub String);

impl std::fmt::Display for PkiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tls pki: {}", self.0)
    }
}

impl std::error::Error for PkiError {}

/// One certificate chain and its key, as a TLS server presents them.
#[derive(Clone, Debug)]
pub struct ServerIdentity {
    /// The leaf first, then its issuer.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's Ed25519 key, PKCS#8 v1 DER.
    pub key_pkcs8: Vec<u8>,
}

impl ServerIdentity {
    /// The key as rustls takes it.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }
}

/// The run's PKI for one server name.
pub struct Pki {
    server_name: String,
    epoch_unix_secs: i64,
    ca: Authority,
    wrong_ca: Authority,
    leaf_key: KeyPair,
    leaf_key_pkcs8: Vec<u8>,
}

/// A CA: its certificate and its key.
struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// Which leaf, and so which serial number (explicit, so the DER never depends on rcgen's
/// defaults).
#[derive(Clone, Copy)]
enum LeafKind {
    Valid,
    WrongCa,
    WrongName,
    /// Serial 0x10 followed by the 8 bytes of `not_after`.
    ExpiringAt(i64),
}

impl Pki {
    /// The PKI of the run with `seed` whose world starts at `epoch_unix_secs`, for a server
    /// reached as `server_name` (a DNS name).
    pub fn new(seed: Seed, epoch_unix_secs: u64, server_name: &str) -> Result<Pki, PkiError> {
        let epoch_unix_secs =
            i64::try_from(epoch_unix_secs).map_err(|_| PkiError(format!("epoch {epoch_unix_secs} out of range")))?;
        let (leaf_key, leaf_key_pkcs8) = ed25519_key(seed, "tls/aggregator-leaf")?;
        let ca = authority(seed, "tls/ca", "obsim run CA", epoch_unix_secs)?;
        let wrong_ca = authority(seed, "tls/wrong-ca", "obsim wrong CA", epoch_unix_secs)?;
        Ok(Pki { server_name: server_name.to_string(), epoch_unix_secs, ca, wrong_ca, leaf_key, leaf_key_pkcs8 })
    }

    /// The run CA's certificate: the agents' trust anchor.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.cert.der().clone()
    }

    /// The wrong CA's certificate (trusted by nobody in the pipeline).
    pub fn wrong_ca_der(&self) -> CertificateDer<'static> {
        self.wrong_ca.cert.der().clone()
    }

    /// The server's valid identity: its name, the run CA, valid until 9999.
    pub fn valid(&self) -> Result<ServerIdentity, PkiError> {
        self.identity(LeafKind::Valid)
    }

    /// The server's name, issued by the wrong CA.
    pub fn wrong_ca(&self) -> Result<ServerIdentity, PkiError> {
        self.identity(LeafKind::WrongCa)
    }

    /// Another name ([`WRONG_NAME`]), issued by the run CA.
    pub fn wrong_name(&self) -> Result<ServerIdentity, PkiError> {
        self.identity(LeafKind::WrongName)
    }

    /// The server's name from the run CA, expiring at `not_after_unix_secs` (X.509 counts
    /// whole seconds).
    pub fn expiring_at(&self, not_after_unix_secs: u64) -> Result<ServerIdentity, PkiError> {
        let not_after = i64::try_from(not_after_unix_secs)
            .map_err(|_| PkiError(format!("not_after {not_after_unix_secs} out of range")))?;
        self.identity(LeafKind::ExpiringAt(not_after))
    }

    /// Issues the leaf of `kind` with the leaf key.
    fn identity(&self, kind: LeafKind) -> Result<ServerIdentity, PkiError> {
        let (name, issuer, serial, not_after) = match kind {
            LeafKind::Valid => (self.server_name.as_str(), &self.ca, vec![2], NOT_AFTER_NEVER_UNIX_SECS),
            LeafKind::WrongCa => (self.server_name.as_str(), &self.wrong_ca, vec![3], NOT_AFTER_NEVER_UNIX_SECS),
            LeafKind::WrongName => (WRONG_NAME, &self.ca, vec![4], NOT_AFTER_NEVER_UNIX_SECS),
            LeafKind::ExpiringAt(not_after) => {
                let mut serial = vec![0x10];
                serial.extend_from_slice(&not_after.to_be_bytes());
                (self.server_name.as_str(), &self.ca, serial, not_after)
            }
        };
        let mut params = CertificateParams::new(vec![name.to_string()])
            .map_err(|error| PkiError(format!("leaf for {name:?}: {error}")))?;
        params.distinguished_name = common_name(name);
        params.serial_number = Some(SerialNumber::from(serial));
        params.not_before = unix_time(self.epoch_unix_secs - NOT_BEFORE_MARGIN_SECS)?;
        params.not_after = unix_time(not_after)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params
            .signed_by(&self.leaf_key, &issuer.cert, &issuer.key)
            .map_err(|error| PkiError(format!("signing the leaf for {name:?}: {error}")))?;
        Ok(ServerIdentity {
            chain: vec![leaf.der().clone(), issuer.cert.der().clone()],
            key_pkcs8: self.leaf_key_pkcs8.clone(),
        })
    }
}

/// A self-signed CA whose key comes from the stream `stream`.
fn authority(seed: Seed, stream: &str, name: &str, epoch_unix_secs: i64) -> Result<Authority, PkiError> {
    let (key, _) = ed25519_key(seed, stream)?;
    let mut params = CertificateParams::new(Vec::new()).map_err(|error| PkiError(format!("{name}: {error}")))?;
    params.distinguished_name = common_name(name);
    params.serial_number = Some(SerialNumber::from(vec![1]));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = unix_time(epoch_unix_secs - NOT_BEFORE_MARGIN_SECS)?;
    params.not_after = unix_time(NOT_AFTER_NEVER_UNIX_SECS)?;
    let cert = params.self_signed(&key).map_err(|error| PkiError(format!("self-signing {name}: {error}")))?;
    Ok(Authority { cert, key })
}

/// An Ed25519 key from the first 32 bytes of the seeded stream `stream`, and its PKCS#8 v1 DER.
fn ed25519_key(seed: Seed, stream: &str) -> Result<(KeyPair, Vec<u8>), PkiError> {
    use rand::RngCore;
    let mut secret = [0u8; 32];
    seed.stream(stream).fill_bytes(&mut secret);
    let mut pkcs8 = ED25519_PKCS8_V1_PREFIX.to_vec();
    pkcs8.extend_from_slice(&secret);
    let der = PrivatePkcs8KeyDer::from(pkcs8.clone());
    let key = KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)
        .map_err(|error| PkiError(format!("key {stream}: {error}")))?;
    Ok((key, pkcs8))
}

/// A distinguished name with only a common name (rcgen's default has a placeholder one).
fn common_name(name: &str) -> DistinguishedName {
    let mut distinguished = DistinguishedName::new();
    distinguished.push(DnType::CommonName, name);
    distinguished
}

/// A Unix time as X.509 takes it.
fn unix_time(secs: i64) -> Result<OffsetDateTime, PkiError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|error| PkiError(format!("time {secs}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: u64 = crate::world::EPOCH_UNIX_SECS_DEFAULT;

    /// The same seed gives byte-identical certificates; another seed, other ones.
    #[test]
    fn certificates_are_a_function_of_the_seed() {
        let first = Pki::new(Seed(7), EPOCH, "railway-aggregator").unwrap();
        let again = Pki::new(Seed(7), EPOCH, "railway-aggregator").unwrap();
        let other = Pki::new(Seed(8), EPOCH, "railway-aggregator").unwrap();
        assert_eq!(first.ca_der(), again.ca_der());
        assert_eq!(first.valid().unwrap().chain, again.valid().unwrap().chain);
        assert_eq!(first.expiring_at(EPOCH + 60).unwrap().chain, again.expiring_at(EPOCH + 60).unwrap().chain);
        assert_eq!(first.wrong_ca().unwrap().chain, again.wrong_ca().unwrap().chain);
        assert_ne!(first.ca_der(), other.ca_der());
        assert_ne!(first.valid().unwrap().chain[0], other.valid().unwrap().chain[0]);
        assert_ne!(first.ca_der(), first.wrong_ca_der(), "the wrong CA is another CA");
    }
}
