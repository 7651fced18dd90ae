//! The Forward v1 handshake (spec section "Handshake Messages"): the server sends HELO with a
//! nonce (and a salt when users must log in), the client answers PING with
//! `hex(sha512(shared_key_salt + client_hostname + nonce + shared_key))`, the server answers
//! PONG with the same digest over its own hostname. A wrong key is refused with a reason on
//! both sides. Randomness comes from the caller's RNG only, so a seed replays the bytes.

use rand::RngCore;
use sha2::{Digest, Sha512};

use super::error::ForwardError;
use super::reader::Reader;
use super::write::{write_array_len, write_bin, write_bool, write_map_len, write_str};

/// Random bytes in a HELO nonce or user-auth salt (as Fluentd's in_forward).
pub(crate) const NONCE_BYTES: usize = 16;
/// Random bytes behind a client's shared_key_salt (sent as their 32 hex digits, as
/// Fluentd's out_forward).
pub(crate) const SHARED_KEY_SALT_BYTES: usize = 16;
/// Reason sent and reported when the digests disagree.
pub const SHARED_KEY_MISMATCH: &str = "shared_key mismatch";
/// Reason sent when user authentication fails.
pub const USER_MISMATCH: &str = "username/password mismatch";
/// Reason sent when the first message after HELO is not a PING (a client that skips the
/// handshake, or sends events first).
pub const INVALID_PING: &str = "invalid ping message";

/// The server's greeting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Helo {
    /// Random bytes that make each handshake's digests unique.
    pub(crate) nonce: Vec<u8>,
    /// Salt for password digests; empty when user authentication is off.
    pub(crate) auth_salt: Vec<u8>,
    /// Whether the server keeps the connection open after a frame.
    pub keepalive: bool,
}

/// The client's answer to HELO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ping {
    /// The client's own hostname.
    pub(crate) client_hostname: String,
    /// The client's random salt for the shared key digest.
    pub(crate) shared_key_salt: Vec<u8>,
    /// `hex(sha512(shared_key_salt + client_hostname + nonce + shared_key))`.
    pub shared_key_hexdigest: String,
    /// Username, empty when user authentication is off.
    pub username: String,
    /// `hex(sha512(auth_salt + username + password))`, empty when user authentication is off.
    pub password_hexdigest: String,
}

/// The server's verdict on PING.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pong {
    /// True when the client is authenticated.
    pub auth_result: bool,
    /// Why not, when refused; empty otherwise.
    pub reason: String,
    /// The server's own hostname.
    pub(crate) server_hostname: String,
    /// `hex(sha512(shared_key_salt + server_hostname + nonce + shared_key))`; empty when
    /// refused.
    pub shared_key_hexdigest: String,
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// The spec's shared key digest: `hex(sha512(salt + hostname + nonce + shared_key))`.
pub fn shared_key_hexdigest(shared_key_salt: &[u8], hostname: &str, nonce: &[u8], shared_key: &str) -> String {
    let mut hasher = Sha512::new();
    hasher.update(shared_key_salt);
    hasher.update(hostname.as_bytes());
    hasher.update(nonce);
    hasher.update(shared_key.as_bytes());
    hex(&hasher.finalize())
}

/// The spec's password digest: `hex(sha512(auth_salt + username + password))`.
pub fn password_hexdigest(auth_salt: &[u8], username: &str, password: &str) -> String {
    let mut hasher = Sha512::new();
    hasher.update(auth_salt);
    hasher.update(username.as_bytes());
    hasher.update(password.as_bytes());
    hex(&hasher.finalize())
}

fn random_bytes<const N: usize>(rng: &mut impl RngCore) -> Vec<u8> {
    let mut bytes = [0u8; N];
    rng.fill_bytes(&mut bytes);
    bytes.to_vec()
}

/// A server's handshake configuration (Fluentd in_forward's `<security>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAuth {
    /// The server's `self_hostname`.
    pub hostname: String,
    /// The shared key both ends must know.
    pub shared_key: String,
    /// `(username, password)` pairs; non-empty turns user authentication on.
    pub users: Vec<(String, String)>,
}

impl ServerAuth {
    /// Makes the HELO for a new connection, drawing nonce (and salt) from `rng`.
    pub fn helo(&self, rng: &mut impl RngCore, keepalive: bool) -> Helo {
        let nonce = random_bytes::<NONCE_BYTES>(rng);
        let auth_salt = if self.users.is_empty() { Vec::new() } else { random_bytes::<NONCE_BYTES>(rng) };
        Helo { nonce, auth_salt, keepalive }
    }

    /// A refusing PONG: `['PONG', false, reason, '', '']`, hostname and digest empty, as
    /// Fluentd's in_forward `generate_pong(false, ...)` sends it.
    pub fn refuse(reason: &str) -> Pong {
        Pong {
            auth_result: false,
            reason: reason.to_owned(),
            server_hostname: String::new(),
            shared_key_hexdigest: String::new(),
        }
    }

    /// Judges a PING against the HELO this server sent and returns the PONG to send back.
    /// in_forward's `check_ping` does not compare hostnames (only Fluentd's out_forward,
    /// a client, refuses a PONG carrying its own hostname).
    pub fn answer_ping(&self, helo: &Helo, ping: &Ping) -> Pong {
        let refuse = Self::refuse;
        let expected =
            shared_key_hexdigest(&ping.shared_key_salt, &ping.client_hostname, &helo.nonce, &self.shared_key);
        if ping.shared_key_hexdigest != expected {
            return refuse(SHARED_KEY_MISMATCH);
        }
        if !self.users.is_empty() {
            let user_ok = self.users.iter().any(|(username, password)| {
                *username == ping.username
                    && password_hexdigest(&helo.auth_salt, username, password) == ping.password_hexdigest
            });
            if !user_ok {
                return refuse(USER_MISMATCH);
            }
        }
        Pong {
            auth_result: true,
            reason: String::new(),
            server_hostname: self.hostname.clone(),
            shared_key_hexdigest: shared_key_hexdigest(
                &ping.shared_key_salt,
                &self.hostname,
                &helo.nonce,
                &self.shared_key,
            ),
        }
    }
}

/// A client's handshake configuration (Fluent Bit's `Shared_Key`, `Self_Hostname`,
/// `Username`, `Password`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAuth {
    /// The client's `self_hostname`.
    pub hostname: String,
    /// The shared key both ends must know.
    pub shared_key: String,
    /// Username for user authentication (sent only when the HELO asks for it).
    pub username: String,
    /// Password for user authentication.
    pub password: String,
}

impl ClientAuth {
    /// Answers a HELO, drawing the shared key salt from `rng`.
    pub fn ping(&self, helo: &Helo, rng: &mut impl RngCore) -> Ping {
        let shared_key_salt = hex(&random_bytes::<SHARED_KEY_SALT_BYTES>(rng)).into_bytes();
        let shared_key_hexdigest =
            shared_key_hexdigest(&shared_key_salt, &self.hostname, &helo.nonce, &self.shared_key);
        let (username, password_hexdigest) = if helo.auth_salt.is_empty() {
            (String::new(), String::new())
        } else {
            (self.username.clone(), password_hexdigest(&helo.auth_salt, &self.username, &self.password))
        };
        Ping {
            client_hostname: self.hostname.clone(),
            shared_key_salt,
            shared_key_hexdigest,
            username,
            password_hexdigest,
        }
    }

    /// Checks the server's PONG as Fluent Bit's out_forward `secure_forward_pong` does:
    /// accepted, and proving it knows the key (it does not compare hostnames).
    pub fn verify_pong(&self, helo: &Helo, ping: &Ping, pong: &Pong) -> Result<(), ForwardError> {
        let reject = |reason: &str| Err(ForwardError::HandshakeRejected { reason: reason.to_owned() });
        if !pong.auth_result {
            return reject(&pong.reason);
        }
        let expected =
            shared_key_hexdigest(&ping.shared_key_salt, &pong.server_hostname, &helo.nonce, &self.shared_key);
        if pong.shared_key_hexdigest != expected {
            return reject(SHARED_KEY_MISMATCH);
        }
        Ok(())
    }
}

impl Helo {
    /// Appends `["HELO", {"nonce": bin, "auth": bin, "keepalive": bool}]`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_array_len(out, 2);
        write_str(out, "HELO");
        write_map_len(out, 3);
        write_str(out, "nonce");
        write_bin(out, &self.nonce);
        write_str(out, "auth");
        write_bin(out, &self.auth_salt);
        write_str(out, "keepalive");
        write_bool(out, self.keepalive);
    }

    /// Parses one complete HELO frame (nonce and auth as bin or str; unknown keys skipped;
    /// `auth` absent means no user authentication, `keepalive` absent means true).
    pub fn parse(frame: &[u8]) -> Result<Self, ForwardError> {
        let mut reader = Reader::new(frame);
        expect_head(&mut reader, "HELO", 2, "2")?;
        let pairs = reader.read_map_len("HELO options")?;
        let mut helo = Self { nonce: Vec::new(), auth_salt: Vec::new(), keepalive: true };
        let mut nonce_seen = false;
        // Bounded: each pair consumes at least two bytes of the frame.
        for _ in 0..pairs {
            match reader.read_str("HELO option key")? {
                "nonce" => {
                    helo.nonce = reader.read_str_or_bin("HELO nonce")?.to_vec();
                    nonce_seen = true;
                }
                "auth" => helo.auth_salt = reader.read_str_or_bin("HELO auth")?.to_vec(),
                "keepalive" => helo.keepalive = reader.read_bool("HELO keepalive")?,
                _ => {
                    reader.skip_value("HELO option value")?;
                }
            }
        }
        reader.expect_end("HELO")?;
        if !nonce_seen {
            return Err(ForwardError::UnexpectedMessage { expected: "HELO", got: "HELO without nonce".to_owned() });
        }
        Ok(helo)
    }
}

impl Ping {
    /// Appends `["PING", hostname, salt, digest, username, password_digest]`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_array_len(out, 6);
        write_str(out, "PING");
        write_str(out, &self.client_hostname);
        match std::str::from_utf8(&self.shared_key_salt) {
            Ok(text) => write_str(out, text),
            Err(_) => write_bin(out, &self.shared_key_salt),
        }
        write_str(out, &self.shared_key_hexdigest);
        write_str(out, &self.username);
        write_str(out, &self.password_hexdigest);
    }

    /// Parses one complete PING frame.
    pub fn parse(frame: &[u8]) -> Result<Self, ForwardError> {
        let mut reader = Reader::new(frame);
        expect_head(&mut reader, "PING", 6, "6")?;
        let ping = Self {
            client_hostname: reader.read_str("PING hostname")?.to_owned(),
            shared_key_salt: reader.read_str_or_bin("PING shared_key_salt")?.to_vec(),
            shared_key_hexdigest: reader.read_str("PING shared_key_hexdigest")?.to_owned(),
            username: reader.read_str("PING username")?.to_owned(),
            password_hexdigest: reader.read_str("PING password")?.to_owned(),
        };
        reader.expect_end("PING")?;
        Ok(ping)
    }
}

impl Pong {
    /// Appends `["PONG", auth_result, reason, hostname, digest]`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_array_len(out, 5);
        write_str(out, "PONG");
        write_bool(out, self.auth_result);
        write_str(out, &self.reason);
        write_str(out, &self.server_hostname);
        write_str(out, &self.shared_key_hexdigest);
    }

    /// Parses one complete PONG frame.
    pub fn parse(frame: &[u8]) -> Result<Self, ForwardError> {
        let mut reader = Reader::new(frame);
        expect_head(&mut reader, "PONG", 5, "5")?;
        let pong = Self {
            auth_result: reader.read_bool("PONG auth_result")?,
            reason: reader.read_str("PONG reason")?.to_owned(),
            server_hostname: reader.read_str("PONG hostname")?.to_owned(),
            shared_key_hexdigest: reader.read_str("PONG shared_key_hexdigest")?.to_owned(),
        };
        reader.expect_end("PONG")?;
        Ok(pong)
    }
}

/// Reads `[word, ...]` with `elements` elements and checks the word.
/// `expected` is the element count as text, for the error message.
fn expect_head(
    reader: &mut Reader<'_>,
    word: &'static str,
    elements: u32,
    expected: &'static str,
) -> Result<(), ForwardError> {
    let got = reader.read_array_len(word)?;
    if got != elements {
        return Err(ForwardError::WrongLength { what: word, expected, got: got.into() });
    }
    let head = reader.read_str(word)?;
    if head != word {
        return Err(ForwardError::UnexpectedMessage { expected: word, got: head.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn server() -> ServerAuth {
        ServerAuth { hostname: "railway-aggregator".to_owned(), shared_key: "s3cret".to_owned(), users: Vec::new() }
    }

    fn client(shared_key: &str) -> ClientAuth {
        ClientAuth {
            hostname: "comfyui-1".to_owned(),
            shared_key: shared_key.to_owned(),
            username: String::new(),
            password: String::new(),
        }
    }

    /// Runs a whole handshake through the wire encodings.
    fn handshake(server: &ServerAuth, client: &ClientAuth, seed: u64) -> (Helo, Ping, Pong) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut wire = Vec::new();
        server.helo(&mut rng, true).encode(&mut wire);
        let helo = Helo::parse(&wire).unwrap();
        wire.clear();
        client.ping(&helo, &mut rng).encode(&mut wire);
        let ping = Ping::parse(&wire).unwrap();
        wire.clear();
        server.answer_ping(&helo, &ping).encode(&mut wire);
        let pong = Pong::parse(&wire).unwrap();
        (helo, ping, pong)
    }

    #[test]
    fn digest_is_sha512_over_salt_hostname_nonce_key() {
        // sha512("") is well known; the digest of the concatenation equals the digest of
        // the parts fed in order.
        assert!(shared_key_hexdigest(b"", "", b"", "").starts_with("cf83e1357eefb8bdf1542850d66d8007"));
        let whole = {
            let mut hasher = Sha512::new();
            hasher.update(b"saltcomfyui-1nonces3cret");
            hex(&hasher.finalize())
        };
        assert_eq!(shared_key_hexdigest(b"salt", "comfyui-1", b"nonce", "s3cret"), whole);
        assert_eq!(whole.len(), 128);
    }

    #[test]
    fn right_key_authenticates_both_ways() {
        let (helo, ping, pong) = handshake(&server(), &client("s3cret"), 1);
        assert_eq!(helo.nonce.len(), NONCE_BYTES);
        assert!(helo.auth_salt.is_empty());
        assert_eq!(ping.shared_key_salt.len(), 2 * SHARED_KEY_SALT_BYTES);
        assert!(pong.auth_result, "server accepts: {}", pong.reason);
        assert_eq!(client("s3cret").verify_pong(&helo, &ping, &pong), Ok(()));
    }

    #[test]
    fn wrong_key_is_rejected_by_the_server_with_a_reason() {
        let (helo, ping, pong) = handshake(&server(), &client("guess"), 2);
        assert!(!pong.auth_result);
        assert_eq!(pong.reason, SHARED_KEY_MISMATCH);
        assert_eq!(
            client("guess").verify_pong(&helo, &ping, &pong),
            Err(ForwardError::HandshakeRejected { reason: SHARED_KEY_MISMATCH.to_owned() })
        );
    }

    #[test]
    fn client_rejects_a_tampered_pong_and_an_impostor_server() {
        let (helo, ping, mut pong) = handshake(&server(), &client("s3cret"), 3);
        let mut tampered = pong.clone();
        tampered
            .shared_key_hexdigest
            .replace_range(0..1, if tampered.shared_key_hexdigest.starts_with('0') { "1" } else { "0" });
        let rejected = Err(ForwardError::HandshakeRejected { reason: SHARED_KEY_MISMATCH.to_owned() });
        assert_eq!(client("s3cret").verify_pong(&helo, &ping, &tampered), rejected);
        // A server that does not know the key cannot forge the digest for its hostname.
        let impostor = ServerAuth { shared_key: "other".to_owned(), ..server() };
        pong.shared_key_hexdigest =
            shared_key_hexdigest(&ping.shared_key_salt, &pong.server_hostname, &helo.nonce, &impostor.shared_key);
        assert_eq!(client("s3cret").verify_pong(&helo, &ping, &pong), rejected);
    }

    #[test]
    fn user_authentication_uses_the_auth_salt() {
        let server = ServerAuth { users: vec![("agent".to_owned(), "pw".to_owned())], ..server() };
        let good = ClientAuth { username: "agent".to_owned(), password: "pw".to_owned(), ..client("s3cret") };
        let (helo, ping, pong) = handshake(&server, &good, 4);
        assert_eq!(helo.auth_salt.len(), NONCE_BYTES);
        assert_eq!(ping.password_hexdigest, password_hexdigest(&helo.auth_salt, "agent", "pw"));
        assert!(pong.auth_result);
        let bad = ClientAuth { password: "nope".to_owned(), ..good };
        let (_, _, pong) = handshake(&server, &bad, 5);
        assert_eq!((pong.auth_result, pong.reason.as_str()), (false, USER_MISMATCH));
    }

    #[test]
    fn a_client_with_the_servers_hostname_is_accepted_as_in_forward_accepts_it() {
        let same = ClientAuth { hostname: "railway-aggregator".to_owned(), ..client("s3cret") };
        let (helo, ping, pong) = handshake(&server(), &same, 6);
        assert!(pong.auth_result, "{pong:?}");
        assert_eq!(same.verify_pong(&helo, &ping, &pong), Ok(()));
    }

    #[test]
    fn a_refusing_pong_carries_no_hostname_and_no_digest() {
        let (_, _, pong) = handshake(&server(), &client("guess"), 8);
        assert_eq!(
            (pong.auth_result, pong.server_hostname.as_str(), pong.shared_key_hexdigest.as_str()),
            (false, "", "")
        );
        let mut wire = Vec::new();
        ServerAuth::refuse(INVALID_PING).encode(&mut wire);
        let parsed = Pong::parse(&wire).unwrap();
        assert_eq!((parsed.auth_result, parsed.reason.as_str()), (false, INVALID_PING));
    }

    #[test]
    fn same_seed_same_bytes() {
        let (helo_a, ping_a, _) = handshake(&server(), &client("s3cret"), 7);
        let (helo_b, ping_b, _) = handshake(&server(), &client("s3cret"), 7);
        assert_eq!((helo_a, ping_a), (helo_b, ping_b));
    }

    #[test]
    fn helo_accepts_str_nonce_and_missing_auth() {
        let mut wire = Vec::new();
        write_array_len(&mut wire, 2);
        write_str(&mut wire, "HELO");
        write_map_len(&mut wire, 1);
        write_str(&mut wire, "nonce");
        write_str(&mut wire, "abcdef");
        let helo = Helo::parse(&wire).unwrap();
        assert_eq!(helo, Helo { nonce: b"abcdef".to_vec(), auth_salt: Vec::new(), keepalive: true });
        let mut no_nonce = Vec::new();
        write_array_len(&mut no_nonce, 2);
        write_str(&mut no_nonce, "HELO");
        write_map_len(&mut no_nonce, 0);
        assert!(Helo::parse(&no_nonce).is_err());
        let mut wrong_word = Vec::new();
        write_array_len(&mut wrong_word, 5);
        write_str(&mut wrong_word, "PANG");
        assert!(Pong::parse(&wrong_word).is_err());
    }
}
