//! Reaching the database: the URL (refused with a password in it), the password
//! from its file or the environment, TLS with rustls when a CA is given, and the
//! bounded connection pool with its timeouts.

use super::error::PostgresError;
use super::PostgresConfig;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use secrecy::{ExposeSecret, SecretString};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;
use zeroize::Zeroizing;

/// Connections the pool keeps at most: signing never touches the database, so
/// these serve key creation, deletion and look-ups only.
const POOL_SIZE: usize = 8;
/// How long connecting (TCP + TLS + authentication) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a pooled connection.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one statement may run (`statement_timeout`, enforced by the server).
const STATEMENT_TIMEOUT_MS: u64 = 10_000;
/// Idle time before TCP keepalives probe the database, so a dead peer is noticed.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// Largest password file read.
const MAX_PASSWORD_BYTES: u64 = 4096;

/// How to reach the database: its settings (password included) and TLS.
pub struct Connector {
    pub settings: tokio_postgres::Config,
    pub tls: Tls,
    /// The URL without a password, for logs and errors.
    pub store: String,
}

/// Plain TCP (or a Unix socket), or TLS verified against `--postgres-ca`.
#[derive(Clone)]
pub enum Tls {
    None,
    Rustls(MakeRustlsConnect),
}

/// Parses `--postgres-url`, refusing a password in it.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, PostgresError> {
    let settings: tokio_postgres::Config = url.parse().map_err(PostgresError::Url)?;
    if settings.get_password().is_some() {
        return Err(PostgresError::PasswordInUrl);
    }
    Ok(settings)
}

/// The database's address as `postgres://USER@HOST:PORT/DB` (never a password).
pub fn describe(settings: &tokio_postgres::Config) -> String {
    let user = settings.get_user().unwrap_or("");
    let host = match settings.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(dir)) => dir.display().to_string(),
        None => "localhost".into(),
    };
    let port = settings.get_ports().first().copied().unwrap_or(5432);
    let dbname = settings.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{dbname}")
}

impl Connector {
    /// Everything needed to connect: the password read, the CA loaded.
    pub fn new(config: &PostgresConfig) -> Result<Self, PostgresError> {
        let mut settings = parse_url(&config.url)?;
        let store = describe(&settings);
        let password = match &config.password_file {
            Some(path) => Some(read_password_file(path)?),
            None => config.password.clone(),
        };
        if let Some(password) = password {
            settings.password(password.expose_secret().as_bytes());
        }
        settings
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives_idle(KEEPALIVE_IDLE)
            .application_name("tufkeyd")
            .options(format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}"));
        let tls = match &config.ca {
            Some(ca) => {
                settings.ssl_mode(SslMode::Require);
                Tls::Rustls(MakeRustlsConnect::new(client_tls(ca)?))
            }
            None => Tls::None,
        };
        Ok(Connector {
            settings,
            tls,
            store,
        })
    }

    /// The bounded pool; connections are made on demand.
    pub fn pool(&self) -> Result<Pool, PostgresError> {
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let settings = self.settings.clone();
        let manager = match &self.tls {
            Tls::None => Manager::from_config(settings, NoTls, manager_config),
            Tls::Rustls(tls) => Manager::from_config(settings, tls.clone(), manager_config),
        };
        Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_secs(1)))
            .recycle_timeout(Some(WAIT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(PostgresError::Pool)
    }
}

/// rustls (ring) trusting only the certificates in `ca`.
fn client_tls(ca: &Path) -> Result<rustls::ClientConfig, PostgresError> {
    let mut roots = rustls::RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|source| PostgresError::CaRead {
            path: ca.to_path_buf(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(PostgresError::Ca {
            path: ca.to_path_buf(),
            problem: "it holds no PEM certificate".into(),
        });
    }
    for certificate in certificates {
        roots.add(certificate).map_err(|error| PostgresError::Ca {
            path: ca.to_path_buf(),
            problem: format!("a certificate in it is not usable as a CA: {error}"),
        })?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(PostgresError::Tls)?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// The password from `path`: a regular file (no symbolic link) owned by the
/// daemon's user that no one else may read; one trailing newline is dropped.
pub fn read_password_file(path: &Path) -> Result<SecretString, PostgresError> {
    let problem = |problem: String| PostgresError::PasswordFile {
        path: path.to_path_buf(),
        problem,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(|source| PostgresError::PasswordFileRead {
            path: path.to_path_buf(),
            source,
        })?;
    let metadata = file
        .metadata()
        .map_err(|source| PostgresError::PasswordFileRead {
            path: path.to_path_buf(),
            source,
        })?;
    let uid = nix::unistd::geteuid().as_raw();
    if !metadata.file_type().is_file() {
        return Err(problem("not a regular file".into()));
    }
    if metadata.uid() != uid {
        return Err(problem(format!(
            "owned by uid {}, not the daemon's user: run `chown {uid} {}`",
            metadata.uid(),
            path.display()
        )));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(problem(format!(
            "mode {mode:04o} lets other users read the database password: run `chmod 600 {}`",
            path.display()
        )));
    }
    let mut text = Zeroizing::new(String::with_capacity(MAX_PASSWORD_BYTES as usize + 2));
    (&mut file)
        .take(MAX_PASSWORD_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| PostgresError::PasswordFileRead {
            path: path.to_path_buf(),
            source,
        })?;
    if text.len() as u64 > MAX_PASSWORD_BYTES {
        return Err(problem(format!(
            "longer than {MAX_PASSWORD_BYTES} bytes: it should hold the password alone"
        )));
    }
    let password = text.strip_suffix('\n').unwrap_or(&text);
    if password.is_empty() {
        return Err(problem(
            "it is empty: write the database password into it".into(),
        ));
    }
    Ok(SecretString::from(password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_password_in_the_url_is_refused_and_never_shown() {
        for url in [
            "postgres://tufkey:hunter2@db.example:5432/keys",
            "host=db.example user=tufkey password=hunter2 dbname=keys",
        ] {
            let error = parse_url(url).unwrap_err();
            assert!(matches!(error, PostgresError::PasswordInUrl), "{error}");
            assert!(!error.to_string().contains("hunter2"));
            assert!(error.to_string().contains("--postgres-password-file"));
        }
        let error = parse_url("postgres://db.example:notaport/keys").unwrap_err();
        assert!(error
            .to_string()
            .contains("postgres://USER@HOST:PORT/DATABASE"));
    }

    #[test]
    fn the_store_is_described_without_secrets() {
        let settings = parse_url("postgres://tufkey@db.example:6543/keys?sslmode=require").unwrap();
        assert_eq!(
            describe(&settings),
            "postgres://tufkey@db.example:6543/keys"
        );
        let settings = parse_url("host=/run/postgresql user=signer").unwrap();
        assert_eq!(
            describe(&settings),
            "postgres://signer@/run/postgresql:5432/signer"
        );
    }

    #[test]
    fn the_password_file_must_be_private_and_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = read_password_file(&path).unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let password = read_password_file(&path).unwrap();
        assert_eq!(password.expose_secret(), "s3cret");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(
            read_password_file(&link).is_err(),
            "a symbolic link is refused"
        );

        std::fs::write(&path, "\n").unwrap();
        let error = read_password_file(&path).unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = client_tls(&path).unwrap_err();
        assert!(error.to_string().contains("--postgres-ca"), "{error}");
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }
}
