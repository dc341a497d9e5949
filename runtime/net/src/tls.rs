//! The cluster's certificate authority and the certificates derived from it.
//!
//! Decision: the join token *is* the cluster's secret. The CA key is derived
//! from it (SHA-256 of a label and the token, used as an Ed25519 seed), and
//! the CA certificate is built deterministically, so every holder of the
//! token derives the same CA and can present a certificate it signed. Mutual
//! TLS against that CA then means "this peer holds the token", checked
//! during the handshake, before a single request byte is read. The
//! consequences: no extra round trip to obtain a certificate, nothing for
//! the head to store, and a leaked token is as bad as a leaked CA key —
//! rotate it by starting the cluster with a new token.

use crate::NetError;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ED25519, SerialNumber, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

/// The name every node's certificate carries and every client expects.
pub const SERVER_NAME: &str = "wray-node";

/// ALPN protocol id: peers speaking another version fail the handshake
/// instead of misreading frames.
const ALPN: &[u8] = b"wray/0";

/// Bytes of secret in a token.
const TOKEN_BYTES: usize = 32;

/// A cluster's join token: 32 random bytes, written as 64 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; TOKEN_BYTES]);

impl Token {
    /// A fresh random token.
    pub fn generate() -> Result<Token, NetError> {
        use ring::rand::SecureRandom;
        let mut b = [0u8; TOKEN_BYTES];
        ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| NetError::Tls("no system randomness".into()))?;
        Ok(Token(b))
    }

    /// Parses 64 hex digits.
    pub fn parse(s: &str) -> Result<Token, NetError> {
        let s = s.trim();
        if s.len() != TOKEN_BYTES * 2 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(NetError::Token(format!("expected {} hex digits", TOKEN_BYTES * 2)));
        }
        let mut b = [0u8; TOKEN_BYTES];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).expect("ascii");
            b[i] = u8::from_str_radix(hex, 16).expect("checked hex");
        }
        Ok(Token(b))
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret by accident.
        f.write_str("Token(..)")
    }
}

/// The CA derived from a token, and this process's certificate signed by it.
pub struct ClusterIdentity {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    peer_timeout: std::time::Duration,
}

fn tls_err(e: impl fmt::Display) -> NetError {
    NetError::Tls(e.to_string())
}

impl ClusterIdentity {
    /// Derives the cluster CA from `token` and issues a certificate for
    /// `name` (a label in the certificate; every peer is reached as
    /// [`SERVER_NAME`]).
    pub fn new(token: &Token, name: &str) -> Result<ClusterIdentity, NetError> {
        let seed: [u8; 32] =
            Sha256::new().chain_update(b"wray cluster CA v1\0").chain_update(token.0).finalize().into();
        // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410).
        let mut pkcs8 =
            vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
        pkcs8.extend_from_slice(&seed);
        let ca_key =
            KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(pkcs8), &PKCS_ED25519).map_err(tls_err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "wray cluster CA");
        ca_params.distinguished_name = dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        // Fixed fields: every token holder must build the same certificate.
        ca_params.not_before = date_time_ymd(2024, 1, 1);
        ca_params.not_after = date_time_ymd(2124, 1, 1);
        ca_params.serial_number = Some(SerialNumber::from(1u64));
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(tls_err)?;

        let key = KeyPair::generate_for(&PKCS_ED25519).map_err(tls_err)?;
        let mut params = CertificateParams::new(vec![SERVER_NAME.to_string()]).map_err(tls_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2124, 1, 1);
        let cert = params.signed_by(&key, &ca).map_err(tls_err)?;
        Ok(ClusterIdentity {
            ca: ca.der().clone(),
            chain: vec![cert.der().clone(), ca.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            peer_timeout: PEER_TIMEOUT,
        })
    }

    /// The same identity, declaring a silent peer dead after `timeout`
    /// instead of [`PEER_TIMEOUT`] (`wray start --peer-timeout`), within
    /// [`MIN_PEER_TIMEOUT`]..=[`MAX_PEER_TIMEOUT`].
    pub fn with_peer_timeout(mut self, timeout: std::time::Duration) -> Result<ClusterIdentity, NetError> {
        if !(MIN_PEER_TIMEOUT..=MAX_PEER_TIMEOUT).contains(&timeout) {
            return Err(NetError::Tls(format!(
                "a peer timeout of {timeout:?} is outside {MIN_PEER_TIMEOUT:?} to {MAX_PEER_TIMEOUT:?}"
            )));
        }
        self.peer_timeout = timeout;
        Ok(self)
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn roots(&self) -> Result<Arc<rustls::RootCertStore>, NetError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).map_err(tls_err)?;
        Ok(Arc::new(roots))
    }

    pub(crate) fn quinn_server_config(&self) -> Result<quinn::ServerConfig, NetError> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(self.roots()?, Self::provider())
            .build()
            .map_err(tls_err)?;
        let mut tls = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), PrivateKeyDer::Pkcs8(self.key.clone_key()))
            .map_err(tls_err)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(tls_err)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
        config.transport_config(transport(self.peer_timeout));
        Ok(config)
    }

    pub(crate) fn quinn_client_config(&self) -> Result<quinn::ClientConfig, NetError> {
        let mut tls = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain.clone(), PrivateKeyDer::Pkcs8(self.key.clone_key()))
            .map_err(tls_err)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(tls_err)?;
        let mut config = quinn::ClientConfig::new(Arc::new(quic));
        config.transport_config(transport(self.peer_timeout));
        Ok(config)
    }
}

/// How long a silent peer is given before its connection is declared dead.
/// Peers ping every second, so a client that vanishes (killed, unplugged)
/// is noticed within [`PEER_TIMEOUT`]. Worker failures are detected sooner
/// by the head's heartbeat timeout; this is the backstop, generous enough
/// that a node busy moving a large object on a loaded machine is not cut off.
pub const PEER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The shortest peer timeout allowed: peers ping every second, so less
/// would cut off healthy peers between two pings.
pub const MIN_PEER_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

/// The longest peer timeout allowed (QUIC's idle timeout is bounded, and a
/// dead client should not hold a job for longer).
pub const MAX_PEER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Bytes a peer may have in flight on one stream.
const STREAM_WINDOW: u32 = 16 << 20;
/// Bytes a peer may have in flight on one connection.
const CONNECTION_WINDOW: u32 = 64 << 20;

/// Streams a peer may have open on one connection at once. Every task in
/// flight and every live actor placed on a node holds one stream of the
/// connection it came over, so quinn's default of 100 capped a node at about
/// a hundred actors: the next stream to open waited forever, and with it
/// every request to that node (found by `wray microbenchmark --scale-out`,
/// where 1,000 actors needing a resource that 15 workers have 100 of each
/// filled one worker at a time). The engine's pool allows
/// `EngineConfig::max_instances` (1,000) instances per node; this is well
/// above it, and what the streams can buffer stays bounded by
/// `CONNECTION_WINDOW`.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 4096;

/// The largest UDP payload a node accepts (QUIC's own limit), what it tells
/// its peers they may send.
pub(crate) const MAX_UDP_PAYLOAD: u16 = 65527;

/// The largest QUIC packet path MTU discovery looks for. Connections start at
/// QUIC's 1,200 bytes and probe upwards (quinn's default stops at 1,452, an
/// Ethernet frame); a probe larger than the path carries is lost and the
/// search settles below it, so on Ethernet nothing changes, while loopback
/// (64 KiB) and jumbo-frame links (9,000) get larger packets: fewer packets
/// to encrypt, acknowledge and pace per byte. Raw QUIC over loopback went
/// from 0.69 to 1.4 GB/s (`examples/loopback.rs`). Why not 64 KiB: quinn
/// hands the kernel up to 10 packets in one send (UDP segmentation
/// offload), and Linux takes at most 64 KiB per send; packets of 8,952
/// bytes or more failed in batches, which quinn's black-hole detection read
/// as a path that had stopped carrying them, and it fell back to 1,200.
/// 6,500 × 10 stays under the limit with the IPv6 header.
pub(crate) const MAX_PACKET: u16 = 6500;

fn transport(peer_timeout: std::time::Duration) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(std::time::Duration::from_secs(1)));
    // Bounded by `with_peer_timeout`, far inside QUIC's limit.
    t.max_idle_timeout(Some(quinn::IdleTimeout::try_from(peer_timeout).expect("a bounded duration")));
    // Windows sized for moving objects between nodes at memory speed on a
    // fast link (quinn's defaults aim at the internet); they bound what one
    // peer can make a node buffer.
    t.stream_receive_window(quinn::VarInt::from_u32(STREAM_WINDOW));
    t.receive_window(quinn::VarInt::from_u32(CONNECTION_WINDOW));
    t.send_window(u64::from(CONNECTION_WINDOW));
    // BBR paces by measured bandwidth instead of halving at each loss: a
    // datagram dropped because a busy node drained its socket late is not
    // congestion, and loss-based control (Cubic) collapsed transfers on it.
    t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_STREAMS_PER_CONNECTION));
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MAX_PACKET);
    t.mtu_discovery_config(Some(mtu));
    Arc::new(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = Token::generate().unwrap();
        assert_eq!(Token::parse(&t.to_string()).unwrap(), t);
        assert!(Token::parse("abc").is_err());
        assert!(Token::parse(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{t:?}"), "Token(..)");
    }

    #[test]
    fn the_same_token_derives_the_same_ca() {
        let t = Token::generate().unwrap();
        let a = ClusterIdentity::new(&t, "a").unwrap();
        let b = ClusterIdentity::new(&t, "b").unwrap();
        assert_eq!(a.ca, b.ca);
        assert_ne!(a.chain[0], b.chain[0]);
        let other = ClusterIdentity::new(&Token::generate().unwrap(), "c").unwrap();
        assert_ne!(a.ca, other.ca);
    }
}
