//! Certificates made in the test, never checked in: a CA, a server certificate for
//! `127.0.0.1` and `localhost`, and client certificates, as PEM and as tonic's TLS configs.
//!
//! Self-contained (rcgen, tonic and tokio-rustls only), so the demo's tests include it too.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// A certificate and its private key, PEM-encoded.
pub struct Pem {
    pub cert: String,
    pub key: String,
    /// The certificate's DER bytes, as a peer sees it in the TLS handshake.
    pub der: Vec<u8>,
    /// The private key's PKCS#8 DER bytes.
    pub key_der: Vec<u8>,
}

impl Pem {
    pub fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert, &self.key)
    }
}

/// A test certificate authority.
pub struct TestCa {
    /// The CA's certificate, PEM-encoded: what clients and mTLS servers trust.
    pub cert: String,
    /// The same, DER-encoded.
    pub der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "otel-stats test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            cert: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `127.0.0.1` and `localhost`.
    pub fn server(&self) -> Pem {
        self.leaf(
            "server",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose common name is `name`.
    pub fn client(&self, name: &str) -> Pem {
        self.leaf(name, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Pem {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    pub fn certificate(&self) -> Certificate {
        Certificate::from_pem(&self.cert)
    }

    /// The server side: TLS with `server`'s certificate, requiring a client certificate
    /// signed by this CA when `mtls`.
    pub fn server_tls(&self, server: &Pem, mtls: bool) -> ServerTlsConfig {
        let tls = ServerTlsConfig::new().identity(server.identity());
        if mtls {
            tls.client_ca_root(self.certificate())
        } else {
            tls
        }
    }

    /// The client side: trusts this CA, presents `client` when given.
    pub fn client_tls(&self, client: Option<&Pem>) -> ClientTlsConfig {
        let tls = ClientTlsConfig::new().ca_certificate(self.certificate());
        match client {
            Some(client) => tls.identity(client.identity()),
            None => tls,
        }
    }

    /// What [`server_tls`](Self::server_tls) amounts to in rustls terms, for servers that
    /// terminate TLS themselves; offers h2 and HTTP/1.1 by ALPN.
    pub fn rustls_server(&self, server: &Pem, mtls: bool) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if mtls {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(self.der.clone())).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der.clone()));
        let mut config = builder
            .with_single_cert(vec![CertificateDer::from(server.der.clone())], key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}
