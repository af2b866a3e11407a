//! A throwaway certificate authority for tests: a self-signed CA and leaf certificates it signs
//! (ECDSA P-256, generated with rcgen on ring). Nothing is cached; every `TestCa` is new.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A self-signed test CA that issues server/client certificates.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A leaf certificate and its private key, both PEM.
#[derive(Clone)]
pub struct IssuedCert {
    /// The leaf certificate (the CA certificate is not appended: clients trust the CA).
    pub cert_pem: String,
    /// The leaf's private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Where [`IssuedCert::write_to`] put the files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// `DIR/STEM.crt`
    pub cert: PathBuf,
    /// `DIR/STEM.key` (mode 0600)
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA whose subject is `CN=<common_name>`.
    pub fn new(common_name: &str) -> Result<Self> {
        let key = KeyPair::generate().context("generating the CA key")?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer =
            CertifiedIssuer::self_signed(params, key).context("self-signing the CA certificate")?;
        Ok(TestCa { issuer })
    }

    /// The CA certificate (what clients put in their trust store, e.g. `sslrootcert`).
    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `subject_alt_names` (IP addresses become IP SANs, anything else DNS
    /// SANs), usable for TLS server and client authentication. Its common name is the first SAN.
    pub fn issue(&self, subject_alt_names: &[&str]) -> Result<IssuedCert> {
        let cn = subject_alt_names
            .first()
            .copied()
            .unwrap_or("flowforge test");
        self.issue_with_cn(cn, subject_alt_names)
    }

    /// Like [`TestCa::issue`] with an explicit subject common name (e.g. the user name that
    /// PostgreSQL's `cert` authentication compares it with).
    pub fn issue_with_cn(
        &self,
        common_name: &str,
        subject_alt_names: &[&str],
    ) -> Result<IssuedCert> {
        let sans: Vec<String> = subject_alt_names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans)
            .with_context(|| format!("invalid subject alternative names {subject_alt_names:?}"))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().context("generating a leaf key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("signing a leaf certificate")?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes the CA certificate to `DIR/STEM.crt` and returns that path.
    pub fn write_to(&self, dir: &Path, stem: &str) -> Result<PathBuf> {
        let path = dir.join(format!("{stem}.crt"));
        write_file(&path, &self.ca_pem(), 0o644)?;
        Ok(path)
    }
}

impl IssuedCert {
    /// Writes `DIR/STEM.crt` and `DIR/STEM.key` (the key with mode 0600).
    pub fn write_to(&self, dir: &Path, stem: &str) -> Result<CertFiles> {
        let files = CertFiles {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
        };
        write_file(&files.cert, &self.cert_pem, 0o644)?;
        write_file(&files.key, &self.key_pem, 0o600)?;
        Ok(files)
    }
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    // An existing file keeps its mode on open: set it.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::RootCertStore;

    use super::*;

    fn verifier(ca: &TestCa) -> Arc<WebPkiServerVerifier> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.ca_pem().as_bytes()).unwrap())
            .unwrap();
        WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap()
    }

    fn verify(ca: &TestCa, cert: &IssuedCert, name: &str) -> Result<(), rustls::Error> {
        let leaf = CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
        verifier(ca)
            .verify_server_cert(
                &leaf,
                &[],
                &ServerName::try_from(name.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    #[test]
    fn issued_certificates_chain_to_the_ca_for_their_names_and_addresses() {
        let ca = TestCa::new("flowforge test CA").unwrap();
        let cert = ca.issue(&["localhost", "127.0.0.1"]).unwrap();
        PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("the key parses");

        verify(&ca, &cert, "localhost").expect("valid for localhost (DNS SAN)");
        verify(&ca, &cert, "127.0.0.1").expect("valid for 127.0.0.1 (IP SAN)");
        assert!(verify(&ca, &cert, "example.com").is_err());
        assert!(verify(&ca, &cert, "127.0.0.2").is_err());

        let other = TestCa::new("another CA").unwrap();
        assert!(
            verify(&other, &cert, "localhost").is_err(),
            "another CA must not validate it"
        );
    }

    #[test]
    fn files_are_written_with_private_keys_unreadable_by_others() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("flowforge test CA").unwrap();
        let cert = ca.issue(&["localhost"]).unwrap();
        let ca_file = ca.write_to(dir.path(), "ca").unwrap();
        let files = cert.write_to(dir.path(), "server").unwrap();
        assert_eq!(std::fs::read_to_string(ca_file).unwrap(), ca.ca_pem());
        assert_eq!(std::fs::read_to_string(&files.cert).unwrap(), cert.cert_pem);
        let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
