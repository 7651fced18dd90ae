//! rustls made deterministic: a `CryptoProvider` whose randomness and key exchange draw from
//! the connection's seeded stream, and a `TimeProvider` that reads the host's clock.
//!
//! Why: rustls draws its randoms (client/server random, session ids) from the provider's
//! `secure_random` and its ephemeral keys from the key-exchange group; ring's group takes OS
//! randomness. Here both come from a ChaCha8 stream the connection owns (seeded from its
//! host's `HostCtx::rng`), installed in a thread-local slot only while the connection is
//! polled ([`with_rng`]), so the bytes on the wire are the same for the same seed whatever
//! other connections interleave. Certificate validity is judged by the host's clock, never
//! the machine's: a skewed agent sees a certificate expired or not yet valid as it would in
//! life.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret, SupportedKxGroup,
};
use rustls::pki_types::UnixTime;
use rustls::{NamedGroup, PeerMisbehaved};

use crate::world::Clock;

thread_local! {
    /// The randomness of the connection being polled on this thread (none between polls).
    static CURRENT_RNG: RefCell<Option<ChaCha8Rng>> = const { RefCell::new(None) };
}

/// Runs `f` with `rng` installed as the randomness of rustls on this thread, and takes it
/// back afterwards (also if `f` panics), so it advances only by what `f` drew.
pub fn with_rng<R>(rng: &mut Option<ChaCha8Rng>, f: impl FnOnce() -> R) -> R {
    /// Puts the stream back into its owner when dropped.
    struct Installed<'a>(&'a mut Option<ChaCha8Rng>);
    impl Drop for Installed<'_> {
        fn drop(&mut self) {
            *self.0 = CURRENT_RNG.with(|slot| slot.borrow_mut().take());
        }
    }
    let previous = CURRENT_RNG.with(|slot| slot.replace(rng.take()));
    assert!(previous.is_none(), "a TLS connection polled inside another one's poll");
    let _installed = Installed(rng);
    f()
}

/// Fills `bytes` from the installed stream; `Err` if none is installed (a draw outside a
/// connection's poll: a bug, and rustls fails the handshake with it rather than go on).
fn draw(bytes: &mut [u8]) -> Result<(), GetRandomFailed> {
    CURRENT_RNG.with(|slot| match slot.borrow_mut().as_mut() {
        Some(rng) => {
            rng.fill_bytes(bytes);
            Ok(())
        }
        None => Err(GetRandomFailed),
    })
}

/// rustls's `SecureRandom` over the installed stream.
#[derive(Debug)]
struct SeededRandom;

impl SecureRandom for SeededRandom {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), GetRandomFailed> {
        draw(bytes)
    }
}

/// X25519 whose ephemeral secrets come from the installed stream (x25519-dalek).
#[derive(Debug)]
struct SeededX25519;

impl SupportedKxGroup for SeededX25519 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        let mut secret = [0u8; 32];
        draw(&mut secret).map_err(|_| rustls::Error::FailedToGetRandomBytes)?;
        let secret = x25519_dalek::StaticSecret::from(secret);
        let public = x25519_dalek::PublicKey::from(&secret);
        Ok(Box::new(X25519Exchange { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// One X25519 exchange in progress.
struct X25519Exchange {
    secret: x25519_dalek::StaticSecret,
    public: x25519_dalek::PublicKey,
}

impl ActiveKeyExchange for X25519Exchange {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, rustls::Error> {
        let peer: [u8; 32] = peer_pub_key.try_into().map_err(|_| PeerMisbehaved::InvalidKeyShare)?;
        let shared = self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        Ok(SharedSecret::from(&shared.as_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

static SEEDED_RANDOM: SeededRandom = SeededRandom;
static SEEDED_X25519: SeededX25519 = SeededX25519;

/// rustls's ring provider with the seeded randomness and X25519 as the only group (ring's
/// signatures, ciphers and verification stay: Ed25519 signing and AEAD are deterministic).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        kx_groups: vec![&SEEDED_X25519],
        secure_random: &SEEDED_RANDOM,
        ..rustls::crypto::ring::default_provider()
    })
}

/// rustls's clock: the host's.
#[derive(Debug)]
pub struct HostTime(pub Clock);

impl rustls::time_provider::TimeProvider for HostTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_nanos(self.0.now_unix_nanos())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Draws come from the installed stream only, and the stream goes back advanced.
    #[test]
    fn randomness_is_the_installed_stream_and_nothing_else() {
        let mut outside = [0u8; 4];
        assert!(draw(&mut outside).is_err(), "no stream installed: no randomness");
        let mut rng = Some(ChaCha8Rng::from_seed([9; 32]));
        let mut first = [0u8; 8];
        with_rng(&mut rng, || draw(&mut first).unwrap());
        let mut expected = ChaCha8Rng::from_seed([9; 32]);
        let mut want = [0u8; 8];
        expected.fill_bytes(&mut want);
        assert_eq!(first, want);
        assert_eq!(rng.as_mut().unwrap().next_u64(), expected.next_u64(), "the stream came back advanced");
    }
}
