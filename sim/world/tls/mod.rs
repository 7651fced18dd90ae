//! TLS on the simulated network: the run's certificates (`pki`), rustls made deterministic
//! (`provider`), and a stream that is plain TCP or TLS (`stream`). The Forward hop (agent →
//! aggregator :24225) uses it when `[agent] tls` and `[aggregator] tls` are on (FIDELITY.md
//! "Forward over TLS").
//!
//! Why in the world layer: TLS is part of the network the parts talk over, and every byte of
//! it must follow the determinism rules (ARCHITECTURE.md §2), like the TCP model beside it.
//!
//! Both ends derive the same PKI from the run's seed ([`Pki::new`]): the agents trust its CA,
//! the aggregator serves the certificate a [`CertSwitch`] names at each handshake (a fault
//! flips it; connections already made keep theirs, as in life).

mod pki;
mod provider;
mod stream;

pub use pki::{Pki, PkiError, ServerIdentity, WRONG_NAME};
pub use provider::{HostTime, provider, with_rng};
pub use stream::{Seeded, Transport};

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::world::{Clock, TcpStream};

/// The agent's side of a TLS connection.
pub type ClientStream = Transport<tokio_rustls::client::TlsStream<TcpStream>>;
/// The aggregator's side of a TLS connection.
pub type ServerStream = Transport<tokio_rustls::server::TlsStream<TcpStream>>;

/// Distinct certificates one server keeps made (one per fault that swaps it, at most): a
/// schedule has at most `faults::FAULTS_LIMIT` faults.
const SERVED_CERTS_LIMIT: usize = 1_024;

/// Which certificate the server presents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum CertChoice {
    /// Its name, the run CA, valid until 9999.
    #[default]
    Valid,
    /// Its name, the run CA, `not_after` at the world's epoch + `true_elapsed` (whole
    /// seconds): a certificate that expires at that moment (`tls_cert_expired`).
    ExpiredAt { true_elapsed: Duration },
    /// Its name, issued by a CA the agents do not trust (`tls_wrong_ca`).
    WrongCa,
    /// Another name, issued by the run CA (`tls_hostname_mismatch`).
    WrongName,
}

/// The certificate a server presents, flipped from outside (the fault injector) and read at
/// every handshake. Clones share it.
#[derive(Clone, Debug, Default)]
pub struct CertSwitch(Arc<Mutex<CertChoice>>);

impl CertSwitch {
    /// Presents `choice` from the next handshake on.
    pub fn set(&self, choice: CertChoice) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = choice;
    }

    /// The choice in force.
    pub fn get(&self) -> CertChoice {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a TLS client checks, as Fluent Bit's `tls.verify` and `tls.verify_hostname` say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Check the chain against the CA and its validity at the host's time.
    pub chain: bool,
    /// Also check that the certificate is for the name dialled (`tls.vhost`).
    pub hostname: bool,
}

/// The client's config: trusts `ca`, judges time by `clock`, checks what `verification`
/// says, offers TLS 1.3 and 1.2, never resumes a session (Fluent Bit's OpenSSL client keeps
/// no session cache: FIDELITY.md "Forward over TLS").
pub fn client_config(
    clock: Clock,
    ca: CertificateDer<'static>,
    verification: Verification,
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    roots.add(ca).map_err(|error| format!("tls: the run CA is not a trust anchor: {error}"))?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .map_err(|error| format!("tls: verifier: {error}"))?;
    let verifier = Arc::new(AgentVerifier { webpki, verification });
    let mut config = ClientConfig::builder_with_details(provider, Arc::new(HostTime(clock)))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| format!("tls: client versions: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// The server's config: the certificate `resolver` picks, time from `clock`, the protocol
/// `versions`, no session cache or tickets (Fluentd's server helper has none).
pub fn server_config(
    clock: Clock,
    resolver: Arc<CertResolver>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_details(provider(), Arc::new(HostTime(clock)))
        .with_protocol_versions(versions)
        .map_err(|error| format!("tls: server versions: {error}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Runs the client handshake over `stream` for `name` (SNI, and the name verified), drawing
/// from `rng`.
pub async fn connect(
    config: Arc<ClientConfig>,
    name: &str,
    stream: TcpStream,
    rng: ChaCha8Rng,
) -> io::Result<ClientStream> {
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, format!("tls.vhost {name:?}: {error}")))?;
    let mut rng = Some(rng);
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut connecting = with_rng(&mut rng, || connector.connect(server_name, stream));
    let stream = std::future::poll_fn(|cx| with_rng(&mut rng, || std::pin::Pin::new(&mut connecting).poll(cx))).await?;
    Ok(Transport::Tls(Box::new(Seeded::new(stream, rng))))
}

/// Runs the server handshake over `stream`, drawing from `rng`.
pub async fn accept(config: Arc<ServerConfig>, stream: TcpStream, rng: ChaCha8Rng) -> io::Result<ServerStream> {
    let mut rng = Some(rng);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let mut accepting = with_rng(&mut rng, || acceptor.accept(stream));
    let stream = std::future::poll_fn(|cx| with_rng(&mut rng, || std::pin::Pin::new(&mut accepting).poll(cx))).await?;
    Ok(Transport::Tls(Box::new(Seeded::new(stream, rng))))
}

/// The rustls error inside an I/O error of a TLS stream, if TLS (not the socket) failed.
pub fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// The handshake failure as rustls words it (the certificate error, the alert received), or
/// the I/O error when it was not TLS's.
pub fn failure_reason(error: &io::Error) -> String {
    match rustls_error(error) {
        Some(rustls::Error::InvalidCertificate(certificate)) => {
            format!("invalid peer certificate: {}", certificate_error_name(certificate))
        }
        Some(tls) => tls.to_string(),
        None => error.to_string(),
    }
}

/// A certificate error's name, without the times rustls adds (stable for tests and logs).
fn certificate_error_name(error: &CertificateError) -> String {
    match error {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "Expired".into(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "NotValidYet".into(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => "NotValidForName".into(),
        CertificateError::UnknownIssuer => "UnknownIssuer".into(),
        other => format!("{other:?}"),
    }
}

/// webpki's verification, less what Fluent Bit's settings turn off: with `tls.verify` off
/// nothing about the certificate is checked; with `tls.verify_hostname` off (its default) a
/// certificate for another name is accepted. rustls checks the chain and validity before the
/// name, so a name error means the rest held.
#[derive(Debug)]
struct AgentVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    verification: Verification,
}

impl ServerCertVerifier for AgentVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.verification.chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verification.hostname => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Picks the server's certificate at each handshake from its [`CertSwitch`], making each
/// distinct certificate once.
pub struct CertResolver {
    pki: Pki,
    switch: CertSwitch,
    epoch_unix_secs: u64,
    provider: Arc<CryptoProvider>,
    made: Mutex<BTreeMap<CertChoice, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver").field("choice", &self.switch.get()).finish()
    }
}

impl CertResolver {
    /// A resolver over `pki` reading `switch`; the valid certificate is made at once, so a
    /// PKI that cannot be made fails the server's start, not a handshake.
    pub fn new(pki: Pki, switch: CertSwitch, epoch_unix_secs: u64) -> Result<CertResolver, String> {
        let resolver =
            CertResolver { pki, switch, epoch_unix_secs, provider: provider(), made: Mutex::new(BTreeMap::new()) };
        resolver.certified(CertChoice::Valid)?;
        Ok(resolver)
    }

    /// The certificate and key for `choice`, made on first use.
    fn certified(&self, choice: CertChoice) -> Result<Arc<CertifiedKey>, String> {
        let mut made = self.made.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(certified) = made.get(&choice) {
            return Ok(Arc::clone(certified));
        }
        let identity = match choice {
            CertChoice::Valid => self.pki.valid(),
            CertChoice::WrongCa => self.pki.wrong_ca(),
            CertChoice::WrongName => self.pki.wrong_name(),
            CertChoice::ExpiredAt { true_elapsed } => {
                self.pki.expiring_at(self.epoch_unix_secs.saturating_add(true_elapsed.as_secs()))
            }
        }
        .map_err(|error| error.to_string())?;
        let key = self
            .provider
            .key_provider
            .load_private_key(identity.key_der())
            .map_err(|error| format!("tls: the leaf key: {error}"))?;
        let certified = Arc::new(CertifiedKey::new(identity.chain, key));
        if made.len() >= SERVED_CERTS_LIMIT {
            made.clear();
        }
        made.insert(choice, Arc::clone(&certified));
        Ok(certified)
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A certificate that cannot be made fails the handshake ("no server certificate").
        self.certified(self.switch.get()).ok()
    }
}
