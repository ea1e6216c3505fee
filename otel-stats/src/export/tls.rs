//! TLS for `https` collectors, from [`TlsSettings`]: one rustls stack with the ring provider,
//! the same one tonic's `tls-ring` uses, configured two ways: as a rustls `ClientConfig` for
//! our hyper connector (OTLP/HTTP and the direct span exporter), and as tonic's
//! `ClientTlsConfig` for the standard gRPC exporter.
//!
//! Trust: the CA file when one is given (and only it, as a private PKI wants), else the
//! webpki roots and the system's roots. Certificate files are read and parsed when the
//! configuration is resolved or the pipeline is built, so a wrong path fails at start.

use std::path::Path;
use std::sync::Arc;

use rustls::WantsVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ConfigBuilder, RootCertStore};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use super::config::TlsSettings;
use super::error::ConfigError;

/// The certificates of a PEM file: at least one, or an error naming `setting`.
pub(crate) fn check_ca(
    setting: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let value = path.display().to_string();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ConfigError::new(setting, &value, format!("cannot read the file: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(setting, &value, format!("not a PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            setting,
            value,
            "no certificate in the file (expected PEM: -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// A client certificate chain and its key, each read and parsed.
pub(crate) fn check_identity(
    (cert_setting, cert): (&str, &Path),
    (key_setting, key): (&str, &Path),
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    let chain = check_ca(cert_setting, cert)?;
    let value = key.display().to_string();
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        ConfigError::new(
            key_setting,
            value,
            format!(
                "no private key read from the file (expected PEM, PKCS#8, PKCS#1 or SEC1): {e}"
            ),
        )
    })?;
    Ok((chain, key))
}

/// The client identity of `tls`, when it has one; an error when only half is given.
fn identity(
    tls: &TlsSettings,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, ConfigError> {
    match (&tls.client_certificate, &tls.client_key) {
        (Some(cert), Some(key)) => {
            check_identity(("tls.client_certificate", cert), ("tls.client_key", key)).map(Some)
        }
        (None, None) => Ok(None),
        (Some(path), None) | (None, Some(path)) => Err(ConfigError::new(
            "tls.client_certificate",
            path.display().to_string(),
            "mutual TLS needs both a client certificate and its key",
        )),
    }
}

/// A rustls client configuration for `tls` (ring provider, TLS 1.2 and 1.3), with no ALPN:
/// the connector sets the protocols it offers.
pub(crate) fn rustls_config(tls: &TlsSettings) -> Result<ClientConfig, ConfigError> {
    config_with(tls, public_roots)
}

/// The client configuration of `tls`, trusting the CAs of its CA file, or `default_roots`
/// when it names none.
fn config_with(
    tls: &TlsSettings,
    default_roots: fn() -> RootCertStore,
) -> Result<ClientConfig, ConfigError> {
    let roots = match &tls.ca_certificate {
        Some(path) => ca_roots(path)?,
        None => default_roots(),
    };
    let builder = ring_builder()?.with_root_certificates(roots);
    match identity(tls)? {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
            ConfigError::new(
                "tls.client_key",
                tls.client_key
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                format!("the key does not fit the certificate: {e}"),
            )
        }),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The webpki roots, and the system's too, for collectors behind a company CA installed
/// there; a system store that cannot be read leaves the webpki roots.
fn public_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

/// The roots of a CA file: only the CAs it holds are trusted.
fn ca_roots(path: &Path) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in check_ca("tls.ca_certificate", path)? {
        roots.add(cert).map_err(|e| {
            ConfigError::new(
                "tls.ca_certificate",
                path.display().to_string(),
                format!("not a CA certificate: {e}"),
            )
        })?;
    }
    Ok(roots)
}

/// A rustls client configuration that trusts no server: for a connector whose endpoint is
/// `http`, which never opens a TLS session.
pub(crate) fn plaintext_config() -> Result<ClientConfig, ConfigError> {
    Ok(ring_builder()?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

/// A client configuration on the ring provider, TLS 1.2 and 1.3.
fn ring_builder() -> Result<ConfigBuilder<ClientConfig, WantsVerifier>, ConfigError> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new("tls", "", format!("cannot set up rustls: {e}")))
}

/// tonic's TLS configuration for `tls`, for the standard OTLP/gRPC exporter.
pub(crate) fn tonic_config(tls: &TlsSettings) -> Result<ClientTlsConfig, ConfigError> {
    // Check the files first: tonic would only fail on the first connection, after start.
    // (Without a CA file, the public roots are left to tonic, which loads them itself.)
    config_with(tls, RootCertStore::empty)?;
    let read = |setting: &str, path: &Path| {
        std::fs::read(path).map_err(|e| {
            ConfigError::new(
                setting,
                path.display().to_string(),
                format!("cannot read the file: {e}"),
            )
        })
    };
    let mut config = ClientTlsConfig::new();
    config = match &tls.ca_certificate {
        Some(path) => {
            config.ca_certificate(Certificate::from_pem(read("tls.ca_certificate", path)?))
        }
        None => config.with_webpki_roots().with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&tls.client_certificate, &tls.client_key) {
        config = config.identity(Identity::from_pem(
            read("tls.client_certificate", cert)?,
            read("tls.client_key", key)?,
        ));
    }
    Ok(config)
}
