//! From a `postgres://` URL to a connection pool, with TLS as libpq users expect it:
//! `sslmode` = disable | allow | prefer (libpq's default) | require | verify-ca | verify-full and
//! `sslrootcert` = a PEM file of trusted CAs, or `system` for the public web roots.
//!
//! libpq semantics kept: `prefer`/`require` encrypt without checking the certificate, unless an
//! `sslrootcert` is given (then `require` checks the chain like `verify-ca`); `verify-ca` checks
//! the chain, `verify-full` the chain and the host name. A password missing from the URL is
//! taken from `PGPASSWORD`, so the URL itself need not hold it.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;

use crate::dispatch::store::location::redact_password;

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Result<TlsMode, String> {
        Ok(match value {
            "disable" => TlsMode::Disable,
            "allow" => TlsMode::Allow,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(format!(
                "sslmode={other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ))
            }
        })
    }
}

/// Which certificates TLS trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCerts {
    /// The public web roots (`sslrootcert=system`, or verify-* without `sslrootcert`).
    System,
    File(PathBuf),
}

/// What the certificate check does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertCheck {
    /// No TLS at all.
    Off,
    /// Encrypt; accept any certificate (libpq `prefer`/`require` without a root certificate).
    EncryptOnly,
    /// Chain to a trusted root, any host name.
    Chain(RootCerts),
    /// Chain and host name.
    Full(RootCerts),
}

/// A parsed PostgreSQL URL: the driver's configuration and the TLS decisions.
#[derive(Clone)]
pub struct PgConnectOptions {
    pub config: tokio_postgres::Config,
    pub check: CertCheck,
    /// The URL with its password hidden, for logs and errors.
    pub shown: String,
}

impl std::fmt::Debug for PgConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConnectOptions")
            .field("url", &self.shown)
            .field("check", &self.check)
            .finish()
    }
}

/// The TLS decision of (sslmode, sslrootcert) — a pure function of the two URL parameters.
pub fn cert_check(mode: TlsMode, rootcert: Option<&str>) -> CertCheck {
    let roots = match rootcert {
        None => None,
        Some("system") => Some(RootCerts::System),
        Some(path) => Some(RootCerts::File(PathBuf::from(path))),
    };
    match (mode, roots) {
        (TlsMode::Disable, _) => CertCheck::Off,
        (TlsMode::Allow | TlsMode::Prefer | TlsMode::Require, None) => CertCheck::EncryptOnly,
        (TlsMode::Allow | TlsMode::Prefer, Some(_)) => CertCheck::EncryptOnly,
        (TlsMode::Require | TlsMode::VerifyCa, Some(r)) => CertCheck::Chain(r),
        (TlsMode::VerifyCa, None) => CertCheck::Chain(RootCerts::System),
        (TlsMode::VerifyFull, r) => CertCheck::Full(r.unwrap_or(RootCerts::System)),
    }
}

impl PgConnectOptions {
    /// Parses a `postgres://` URL. Errors name the parameter and never hold the password.
    pub fn from_url(url: &str) -> Result<PgConnectOptions, String> {
        let shown = redact_password(url);
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = TlsMode::Prefer;
        let mut rootcert: Option<String> = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = urlencoding::decode(raw)
                .map_err(|_| format!("{shown}: parameter {key} is not valid percent-encoding"))?;
            match key {
                "sslmode" => mode = TlsMode::parse(&value).map_err(|e| format!("{shown}: {e}"))?,
                "sslrootcert" => rootcert = Some(value.into_owned()),
                "sslcert" | "sslkey" | "sslpassword" => {
                    return Err(format!(
                        "{shown}: {key} (client certificates) is not supported; use a password"
                    ))
                }
                _ => kept.push(pair),
            }
        }
        let driver_url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config = tokio_postgres::Config::from_str(&driver_url)
            .map_err(|e| format!("{shown}: {}", redact_password(&e.to_string())))?;
        if config.get_password().is_none() {
            if let Ok(pw) = std::env::var("PGPASSWORD") {
                config.password(pw);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("psa-operator");
        }
        let check = cert_check(mode, rootcert.as_deref());
        config.ssl_mode(match (mode, &check) {
            (_, CertCheck::Off) => SslMode::Disable,
            (TlsMode::Allow | TlsMode::Prefer, _) => SslMode::Prefer,
            _ => SslMode::Require,
        });
        Ok(PgConnectOptions {
            config,
            check,
            shown,
        })
    }

    /// The rustls client configuration for the certificate check (`None`: no TLS).
    pub fn tls_config(&self) -> Result<Option<rustls::ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match &self.check {
            CertCheck::Off => return Ok(None),
            CertCheck::EncryptOnly => Arc::new(WithoutHostName {
                chain: None,
                provider,
            }),
            CertCheck::Chain(roots) => Arc::new(WithoutHostName {
                chain: Some(webpki_verifier(roots, provider.clone())?),
                provider,
            }),
            CertCheck::Full(roots) => webpki_verifier(roots, provider)?,
        };
        Ok(Some(
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        ))
    }
}

fn webpki_verifier(
    roots: &RootCerts,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::System => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        RootCerts::File(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "sslrootcert {}: no PEM certificate in it",
                    path.display()
                ));
            }
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            }
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| format!("TLS set-up: {e}"))
}

/// `verify-ca` (a chain to check) and `prefer`/`require` without a root certificate (none):
/// the host name is never compared, and without a chain the certificate is not checked at all
/// (encrypted only, as libpq). The handshake signatures are verified either way, so the
/// session key belongs to the certificate presented.
#[derive(Debug)]
struct WithoutHostName {
    /// The verifier of the chain; `None`: any certificate.
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for WithoutHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

impl WithoutHostName {
    /// The provider's signature algorithms (the chain verifier is built with the same).
    fn algorithms(&self) -> &rustls::crypto::WebPkiSupportedAlgorithms {
        &self.provider.signature_verification_algorithms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_decide_the_certificate_check() {
        let file = || RootCerts::File(PathBuf::from("/etc/psa/ca.pem"));
        let cases = [
            (TlsMode::Disable, Some("/etc/psa/ca.pem"), CertCheck::Off),
            (TlsMode::Prefer, None, CertCheck::EncryptOnly),
            (TlsMode::Allow, None, CertCheck::EncryptOnly),
            (TlsMode::Require, None, CertCheck::EncryptOnly),
            (
                TlsMode::Require,
                Some("/etc/psa/ca.pem"),
                CertCheck::Chain(file()),
            ),
            (TlsMode::VerifyCa, None, CertCheck::Chain(RootCerts::System)),
            (
                TlsMode::VerifyCa,
                Some("/etc/psa/ca.pem"),
                CertCheck::Chain(file()),
            ),
            (
                TlsMode::VerifyFull,
                Some("system"),
                CertCheck::Full(RootCerts::System),
            ),
            (
                TlsMode::VerifyFull,
                Some("/etc/psa/ca.pem"),
                CertCheck::Full(file()),
            ),
        ];
        for (mode, root, want) in cases {
            assert_eq!(cert_check(mode, root), want, "{mode:?} {root:?}");
        }
    }

    #[test]
    fn url_parameters_reach_the_driver_and_tls() {
        let o = PgConnectOptions::from_url(
            "postgres://psa:pw@db.example:6432/alerts?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(o.config.get_dbname(), Some("alerts"));
        assert_eq!(o.config.get_user(), Some("psa"));
        assert_eq!(o.config.get_ports(), &[6432]);
        assert_eq!(o.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(o.config.get_application_name(), Some("x"));
        assert_eq!(
            o.check,
            CertCheck::Full(RootCerts::File(PathBuf::from("/ca.pem")))
        );
        assert_eq!(
            o.shown,
            "postgres://psa:***@db.example:6432/alerts?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x"
        );
        let plain = PgConnectOptions::from_url("postgres://psa@db/alerts").unwrap();
        assert_eq!(plain.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(plain.check, CertCheck::EncryptOnly);
    }

    #[test]
    fn bad_tls_parameters_are_named_without_the_password() {
        let e =
            PgConnectOptions::from_url("postgres://psa:s3cret@db/a?sslmode=strict").unwrap_err();
        assert!(e.contains("sslmode=\"strict\""), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e =
            PgConnectOptions::from_url("postgres://psa:s3cret@db/a?sslcert=/c.pem").unwrap_err();
        assert!(e.contains("sslcert"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let missing = PgConnectOptions::from_url(
            "postgres://psa@db/a?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap()
        .tls_config()
        .unwrap_err();
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
    }
}
