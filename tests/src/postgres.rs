//! A real PostgreSQL for the replica tests, and tufkeyd replicas sharing it.
//!
//! [`PgCluster`] is a throwaway cluster made with Debian's `initdb` and `pg_ctl`: its
//! own temporary directory, loopback TCP on a free port, its Unix socket inside that
//! directory, and a role `tufkey` that logs in over TCP with a password (SCRAM) kept
//! in a 0600 file, owning the database `tufkey`. PostgreSQL refuses to run as root,
//! so when the tests run as root (CI) every PostgreSQL program runs as the `postgres`
//! user the Debian package creates, through `setpriv`.
//!
//! [`Replicas`] are N tufkeyd on that database, each with its own socket, store and
//! audit log, all with the same store secret in one `--secret-file` (the shared
//! credential, not `TUFKEY_PASSPHRASE`), and each with a TCP listener with mutual TLS
//! from one test PKI, so a failover client and notary-server can reach them.
//!
//! Everything started here is stopped when its guard drops.

use crate::daemon::{DaemonOptions, Sandbox};
use crate::notary::{assert_success, free_port, path_arg, Pki, TlsDaemon};
use rand_core::{OsRng, RngCore};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The role and database the daemons use.
const DATABASE: &str = "tufkey";

/// The superuser `initdb` creates; it logs in over the private Unix socket only.
const SUPERUSER: &str = "postgres";

/// A throwaway PostgreSQL cluster, stopped (immediately) and removed on drop.
pub struct PgCluster {
    /// Owned by the test's user, mode 0711 so `postgres` can reach `cluster/` inside.
    root: tempfile::TempDir,
    bin_dir: PathBuf,
    owner: Option<(u32, u32)>,
    port: u16,
    running: bool,
}

impl PgCluster {
    /// `initdb`, start on `127.0.0.1:<free port>`, and create the role and database
    /// `tufkey` with a random password in [`PgCluster::password_file`].
    pub fn start() -> PgCluster {
        let bin_dir = postgres_bin_dir();
        let owner = postgres_owner();
        let root = tempfile::Builder::new()
            .prefix("tufkey-pg.")
            .tempdir()
            .expect("a temporary directory for PostgreSQL");
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o711))
            .expect("let the postgres user reach the cluster directory");
        let mut cluster = PgCluster {
            root,
            bin_dir,
            owner,
            port: free_port(),
            running: false,
        };
        let cluster_dir = cluster.cluster_dir();
        fs::create_dir(&cluster_dir).expect("create the cluster directory");
        fs::create_dir(cluster.socket_dir()).expect("create the socket directory");
        if let Some((uid, gid)) = owner {
            for dir in [cluster_dir.clone(), cluster.socket_dir()] {
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                    .expect("give the cluster directory to the postgres user");
            }
        }
        fs::set_permissions(&cluster_dir, fs::Permissions::from_mode(0o700))
            .expect("chmod the cluster directory");

        let data = cluster.data_dir();
        let output = cluster
            .command("initdb")
            .arg("--pgdata")
            .arg(&data)
            .args(["--username", SUPERUSER, "--encoding", "UTF8", "--no-sync"])
            // The superuser over the private socket only; every TCP login by password.
            .args(["--auth-local", "trust", "--auth-host", "scram-sha-256"])
            .output()
            .expect("run initdb");
        assert_success("initdb", &output);
        cluster.start_again();

        let password = random_hex(24);
        write_private_file(&cluster.password_file(), password.as_bytes());
        cluster.sql_as_superuser(
            "postgres",
            &format!(
                "SET password_encryption = 'scram-sha-256';\n\
                 CREATE ROLE {DATABASE} LOGIN PASSWORD '{password}';\n\
                 CREATE DATABASE {DATABASE} OWNER {DATABASE};\n"
            ),
        );
        cluster
    }

    /// `postgres://tufkey@127.0.0.1:PORT/tufkey` (no password: that is in the file).
    pub fn url(&self) -> String {
        format!("postgres://{DATABASE}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The `tufkey` role's password, mode 0600, owned by the test's user (the daemons').
    pub fn password_file(&self) -> PathBuf {
        self.root.path().join("tufkey-password")
    }

    /// Stops the server (fast shutdown: sessions are ended, data kept).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let output = self
            .pg_ctl("stop")
            .args(["--mode", "fast", "--wait", "--timeout", "30"])
            .output()
            .expect("run pg_ctl stop");
        self.assert_pg_success("pg_ctl stop", &output);
        self.running = false;
    }

    /// Starts the stopped server again on the same port with the same data.
    pub fn start_again(&mut self) {
        if self.running {
            return;
        }
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories='{}' \
             -c fsync=off -c full_page_writes=off",
            self.port,
            self.socket_dir().display()
        );
        let output = self
            .pg_ctl("start")
            .args(["--wait", "--timeout", "30", "--log"])
            .arg(self.log_file())
            .arg("-o")
            .arg(options)
            .output()
            .expect("run pg_ctl start");
        self.assert_pg_success("pg_ctl start", &output);
        self.running = true;
    }

    /// `pg_dump` of the `tufkey` database (plain SQL, data included).
    pub fn dump(&self) -> Vec<u8> {
        let output = self
            .command("pg_dump")
            .args(self.superuser_connection())
            .args(["--dbname", DATABASE, "--format", "plain"])
            .output()
            .expect("run pg_dump");
        self.assert_pg_success("pg_dump", &output);
        output.stdout
    }

    /// Runs `sql` on the `tufkey` database as the superuser; returns psql's unaligned,
    /// tuples-only output (one row a line, columns separated by `|`).
    pub fn sql(&self, sql: &str) -> String {
        self.sql_as_superuser(DATABASE, sql)
    }

    /// The server's log so far.
    fn log_text(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    fn sql_as_superuser(&self, database: &str, sql: &str) -> String {
        let mut child = self
            .command("psql")
            .args(self.superuser_connection())
            .args(["--dbname", database, "--no-psqlrc", "--quiet"])
            .args(["--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        child
            .stdin
            .take()
            .expect("psql's stdin")
            .write_all(sql.as_bytes())
            .expect("write SQL to psql");
        let output = child.wait_with_output().expect("wait for psql");
        self.assert_pg_success(&format!("psql {sql:?}"), &output);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn superuser_connection(&self) -> Vec<String> {
        vec![
            "--host".into(),
            self.socket_dir().display().to_string(),
            "--port".into(),
            self.port.to_string(),
            "--username".into(),
            SUPERUSER.into(),
        ]
    }

    fn pg_ctl(&self, action: &str) -> Command {
        let mut command = self.command("pg_ctl");
        command.arg(action).arg("--pgdata").arg(self.data_dir());
        command
    }

    /// A PostgreSQL program from the cluster's version, run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        let mut command = match self.owner {
            Some((uid, gid)) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(program);
                command
            }
            None => Command::new(program),
        };
        // The test's own working directory may be closed to the postgres user.
        command
            .current_dir(self.cluster_dir())
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .env("PGCONNECT_TIMEOUT", "10");
        command
    }

    fn assert_pg_success(&self, what: &str, output: &Output) {
        if !output.status.success() {
            eprintln!("--- PostgreSQL log\n{}", self.log_text());
        }
        assert_success(what, output);
    }

    fn cluster_dir(&self) -> PathBuf {
        self.root.path().join("cluster")
    }

    fn data_dir(&self) -> PathBuf {
        self.cluster_dir().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.cluster_dir().join("socket")
    }

    fn log_file(&self) -> PathBuf {
        self.cluster_dir().join("postgres.log")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .pg_ctl("stop")
                .args(["--mode", "immediate", "--wait", "--timeout", "30"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Debian's `/usr/lib/postgresql/<newest version>/bin` (not on PATH), else the
/// directory of the `initdb` on PATH.
fn postgres_bin_dir() -> PathBuf {
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    if let Some((_, bin)) = newest {
        return bin;
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    on_path
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .expect(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run \
             scripts/install-deps.sh (Debian package postgresql)",
        )
}

/// As root: the uid and gid of the `postgres` user, whom PostgreSQL's programs run
/// as. As anyone else: `None`, they run as that user.
fn postgres_owner() -> Option<(u32, u32)> {
    if id(&["-u"]) != 0 {
        return None;
    }
    Some((id(&["-u", SUPERUSER]), id(&["-g", SUPERUSER])))
}

fn id(args: &[&str]) -> u32 {
    let output = Command::new("id").args(args).output().expect("run id");
    assert!(
        output.status.success(),
        "id {args:?} failed ({}): the Debian package postgresql creates the postgres user; \
         run scripts/install-deps.sh",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("id prints a number")
}

/// `bytes` random bytes as hex: passwords and secrets without quoting trouble.
fn random_hex(bytes: usize) -> String {
    let mut random = vec![0u8; bytes];
    OsRng.fill_bytes(&mut random);
    hex::encode(random)
}

/// Writes a new file readable by its owner only.
fn write_private_file(path: &Path, contents: &[u8]) {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(contents))
        .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
}

/// The access policy of the replicas' TCP listeners: notary-server gets the Notary
/// API; the test client (the failover load, `tufkey --addr`) signs, manages keys and
/// verifies the audit log.
pub const REPLICA_TLS_POLICY: &str = r#"
[[grant]]
cert_cn = "notary-server"
permissions = ["notary"]

[[grant]]
cert_cn = "tufkey-test-client"
permissions = ["notary", "sign", "keys_read", "keys_admin", "session"]
"#;

/// One tufkeyd of [`Replicas`]: its sandbox (socket, store, audit log, log) and the
/// daemon with its TLS port.
pub struct Replica {
    pub tls: TlsDaemon,
    pub sandbox: Sandbox,
}

impl Replica {
    /// `https://127.0.0.1:PORT`, for `--addr` and the client library.
    pub fn addr(&self) -> String {
        self.tls.url()
    }
}

/// N tufkeyd on one [`PgCluster`]; `replicas[i]` is replica `i + 1` of the tests.
pub struct Replicas {
    pub replicas: Vec<Option<Replica>>,
    pub pki: Pki,
    /// The store secret every replica reads (`--secret-file`), mode 0600.
    pub secret_file: PathBuf,
    /// Holds the PKI, the secret file and the policy.
    _shared: Sandbox,
}

impl Replicas {
    /// Starts `n` replicas on `cluster`, one after the other (the first creates the
    /// keystore in the database; the others open it with the same secret).
    pub fn start(cluster: &PgCluster, n: usize) -> Replicas {
        let shared = Sandbox::new();
        let pki = Pki::make(&shared.path("pki"));
        let secret_file = shared.path("store-secret");
        write_private_file(&secret_file, random_hex(32).as_bytes());
        let policy = shared.path("replica-policy.toml");
        fs::write(&policy, REPLICA_TLS_POLICY).expect("write the replica policy");
        let mut replicas = Replicas {
            replicas: Vec::with_capacity(n),
            pki,
            secret_file,
            _shared: shared,
        };
        for _ in 0..n {
            let replica = replicas.start_one(cluster, &policy);
            replicas.replicas.push(Some(replica));
        }
        replicas
    }

    fn start_one(&self, cluster: &PgCluster, policy: &Path) -> Replica {
        let sandbox = Sandbox::new();
        let args = [
            "--postgres-url".to_string(),
            cluster.url(),
            "--postgres-password-file".into(),
            path_arg(&cluster.password_file()),
            "--secret-file".into(),
            path_arg(&self.secret_file),
            "--audit-log".into(),
            path_arg(&sandbox.path("audit").join("audit.log")),
            "--policy".into(),
            path_arg(policy),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let options = DaemonOptions {
            passphrase: None,
            ..DaemonOptions::default()
        };
        let tls = TlsDaemon::start_with(&sandbox, &self.pki, &args, options);
        Replica { tls, sandbox }
    }

    /// Replica `number` (1-based, as the tests name them); panics if it was killed.
    pub fn replica(&self, number: usize) -> &Replica {
        self.replicas[number - 1]
            .as_ref()
            .unwrap_or_else(|| panic!("replica {number} was killed"))
    }

    /// Every replica still running, with its 1-based number.
    pub fn running(&self) -> impl Iterator<Item = (usize, &Replica)> {
        self.replicas
            .iter()
            .enumerate()
            .filter_map(|(index, replica)| replica.as_ref().map(|r| (index + 1, r)))
    }

    /// The `https://` address of every running replica, in order.
    pub fn addrs(&self) -> Vec<String> {
        self.replicas.iter().flatten().map(Replica::addr).collect()
    }

    /// SIGKILLs replica `number` (1-based).
    pub fn kill9(&mut self, number: usize) {
        let replica = self.replicas[number - 1]
            .take()
            .unwrap_or_else(|| panic!("replica {number} was already killed"));
        replica.tls.daemon.kill9();
    }
}
