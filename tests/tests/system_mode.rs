//! System mode, for real (run as root, as CI does): tufkeyd runs as its own service
//! user with `--allow-gid` and `--secret-file`; real users made with `useradd` call
//! it. A member of the allowed group signs a TUF repository that python-tuf accepts;
//! a user outside the group is kept out by the socket's permissions; the member
//! cannot read the key files or the secret, nor look into the daemon (environ, mem,
//! ptrace). The unit files in `udev/` pass `systemd-analyze`.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tufkey_e2e::daemon::bin_dir;
use tufkey_e2e::tuf_repo::{RepoBuilder, RepoKeys, RoleKey};
use tufkey_e2e::verify::{verify_with_python_tuf, workspace_root};

/// The accounts this test makes (or reuses), prefixed so they cannot be real ones.
const SERVICE_USER: &str = "tkst-tufkey";
const CLIENTS_GROUP: &str = "tkst-clients";
const CLIENT_USER: &str = "tkst-client";
const OTHER_USER: &str = "tkst-other";
const GUN: &str = "example.com/system-mode";

/// Runs `program args` and returns its output; spawning must work.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("running {program}: {error}"))
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn exists(database: &str, name: &str) -> bool {
    run("getent", &[database, name]).status.success()
}

/// The users and group of the test; those it created are deleted on drop.
struct Accounts {
    created_users: Vec<&'static str>,
    created_group: bool,
}

impl Accounts {
    fn create() -> Self {
        let mut accounts = Accounts {
            created_users: Vec::new(),
            created_group: false,
        };
        if !exists("group", CLIENTS_GROUP) {
            run_ok("groupadd", &["--system", CLIENTS_GROUP]);
            accounts.created_group = true;
        }
        let users: [(&str, &[&str]); 3] = [
            // The service user is a member of the clients group (sysusers: `m tufkey
            // tufkey-clients`) so it can give its socket to that group.
            (SERVICE_USER, &["--system", "--groups", CLIENTS_GROUP]),
            // The client's primary group is its own: it gets in by a supplementary group.
            (CLIENT_USER, &["--groups", CLIENTS_GROUP]),
            (OTHER_USER, &[]),
        ];
        for (user, extra) in users {
            if exists("passwd", user) {
                if !extra.is_empty() {
                    run_ok("usermod", &["--append", "--groups", CLIENTS_GROUP, user]);
                }
                continue;
            }
            let mut args = vec![
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
            ];
            args.extend_from_slice(extra);
            args.push(user);
            run_ok("useradd", &args);
            accounts.created_users.push(user);
        }
        accounts
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for user in &self.created_users {
            let _ = run("userdel", &[user]);
        }
        if self.created_group {
            let _ = run("groupdel", &[CLIENTS_GROUP]);
        }
    }
}

fn uid_of(user: &str) -> u32 {
    run_ok("id", &["-u", user]).trim().parse().unwrap()
}

fn gid_of_group(group: &str) -> u32 {
    run_ok("getent", &["group", group])
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap()
}

/// `program args` as `user`, with that user's groups, in an empty environment.
fn as_user(user: &str, program: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={user}"))
        .arg(format!("--regid={}", run_ok("id", &["-g", user]).trim()))
        .arg("--init-groups")
        .arg("--")
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// What a command run as another user printed; success or not.
struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
}

fn outcome(mut command: Command, stdin: Option<&[u8]>) -> Outcome {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    Outcome {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The layout of a system install, under one temporary directory: binaries any
/// user may run, the service user's private state, a secret directory, a runtime
/// directory for the socket (as systemd's RuntimeDirectory= makes it: the service
/// user's, 0755).
struct Install {
    root: tempfile::TempDir,
    service_uid: u32,
    clients_gid: u32,
}

impl Install {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let install = Install {
            root,
            service_uid: uid_of(SERVICE_USER),
            clients_gid: gid_of_group(CLIENTS_GROUP),
        };
        // The workspace's target/ may not be reachable by other users: copy the two
        // binaries somewhere every user can run them.
        fs::create_dir(install.path("bin")).unwrap();
        for binary in ["tufkeyd", "tufkey"] {
            let copy = install.path("bin").join(binary);
            fs::copy(bin_dir().join(binary), &copy).unwrap_or_else(|error| {
                panic!("copy {binary} (run `cargo build --bins`): {error}")
            });
            fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(install.path("bin"), fs::Permissions::from_mode(0o755)).unwrap();
        for (dir, mode) in [("state", 0o700), ("etc", 0o755), ("run", 0o755)] {
            let path = install.path(dir);
            fs::create_dir(&path).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&path, Some(install.service_uid), None).unwrap();
        }
        install
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.path("bin").join(name)
    }

    fn store(&self) -> PathBuf {
        self.path("state/store")
    }

    fn secret(&self) -> PathBuf {
        self.path("etc/secret")
    }

    fn socket_dir(&self) -> PathBuf {
        self.path("run/tufkey")
    }

    fn socket(&self) -> PathBuf {
        self.socket_dir().join("tufkeyd.sock")
    }

    /// `tufkeyd` as the service user, as the system unit runs it.
    fn daemon_command(&self) -> Command {
        let gid = self.clients_gid.to_string();
        let mut command = as_user(
            SERVICE_USER,
            &self.bin("tufkeyd"),
            &[
                "--store",
                self.store().to_str().unwrap(),
                "--socket",
                self.socket().to_str().unwrap(),
                "--allow-gid",
                &gid,
                "--secret-file",
                self.secret().to_str().unwrap(),
                "--no-keyring",
                "--no-yubikey",
            ],
        );
        command.env("RUST_LOG", "info");
        command
    }

    /// `tufkey --socket SOCKET args` as `user`, told (as the README tells clients)
    /// that the daemon runs as the service user.
    fn cli(&self, user: &str, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let socket = self.socket();
        let mut argv = vec!["--socket", socket.to_str().unwrap()];
        argv.extend_from_slice(args);
        let mut command = as_user(user, &self.bin("tufkey"), &argv);
        command.env("TUFKEY_SERVER_UID", SERVICE_USER);
        outcome(command, stdin)
    }

    fn cli_ok(&self, user: &str, args: &[&str]) -> String {
        let result = self.cli(user, args, None);
        assert!(
            result.success,
            "tufkey {args:?} as {user} failed: {}",
            result.stderr
        );
        result.stdout
    }
}

/// A tufkeyd started as the service user, killed on drop.
struct ServiceDaemon {
    child: Child,
}

impl ServiceDaemon {
    fn start(install: &Install) -> Self {
        let mut child = install.daemon_command().spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        // Root may connect whatever the socket's mode: that tells us it listens.
        while UnixStream::connect(install.socket()).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                let output = child.wait_with_output().unwrap();
                panic!(
                    "tufkeyd exited with {status} before listening:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            assert!(
                Instant::now() < deadline,
                "tufkeyd did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Nobody reads the daemon's log pipe while it runs: let it go to /dev/null
        // through a reader thread so a chatty daemon never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || std::io::copy(&mut { stderr }, &mut std::io::sink()));
        ServiceDaemon { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        run_ok("kill", &["-TERM", &self.pid().to_string()]);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tufkeyd exited with {status} on SIGTERM");
    }
}

impl Drop for ServiceDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o777
}

/// A command as `user` fails, saying "Permission denied" / "Operation not permitted".
fn assert_refused(user: &str, program: &str, args: &[&str], what: &str) {
    let result = outcome(as_user(user, Path::new(program), args), None);
    assert!(
        !result.success,
        "{user} could {what}: `{program} {args:?}` succeeded"
    );
    assert!(
        result.stderr.contains("Permission denied")
            || result.stderr.contains("Operation not permitted"),
        "{user}: `{program} {args:?}` failed for another reason than permissions: {}",
        result.stderr
    );
}

#[test]
fn a_group_member_signs_through_a_service_user_daemon_but_cannot_take_its_keys() {
    let _accounts = Accounts::create();
    let install = Install::new();

    // A secret file that others could read is refused, naming the file and the fix.
    fs::write(install.secret(), "not so secret\n").unwrap();
    std::os::unix::fs::chown(install.secret(), Some(install.service_uid), None).unwrap();
    fs::set_permissions(install.secret(), fs::Permissions::from_mode(0o640)).unwrap();
    let refused = install.daemon_command().output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "tufkeyd started with a 0640 secret file"
    );
    assert!(
        stderr.contains(&format!("chmod 600 {}", install.secret().display())),
        "the refusal does not name the file and the fix: {stderr}"
    );
    fs::remove_file(install.secret()).unwrap();

    // First start: the new keystore gets a random secret in a new 0600 file.
    let daemon = ServiceDaemon::start(&install);
    let secret = fs::metadata(install.secret()).unwrap();
    assert_eq!(secret.mode() & 0o777, 0o600);
    assert_eq!(secret.uid(), install.service_uid);
    assert!(fs::read_to_string(install.secret()).unwrap().len() >= 40);
    // The socket and its directory belong to the clients group; nobody else's.
    for (path, mode) in [(install.socket_dir(), 0o750), (install.socket(), 0o660)] {
        let metadata = fs::metadata(&path).unwrap();
        assert_eq!(metadata.mode() & 0o777, mode, "{}", path.display());
        assert_eq!(metadata.gid(), install.clients_gid, "{}", path.display());
    }
    assert_eq!(mode_of(&install.store()), 0o700);

    // The service user (the daemon's own uid) administers: one key per role.
    let mut keys = Vec::new();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let key: Value = serde_json::from_str(&install.cli_ok(
            SERVICE_USER,
            &["--json", "key", "generate", "--gun", GUN, "--role", role],
        ))
        .unwrap();
        keys.push(RoleKey::new(
            key["keyid"].as_str().unwrap(),
            key["tuf_key"].clone(),
        ));
    }
    let keyids: Vec<String> = keys.iter().map(|key| key.keyid.clone()).collect();
    let [root, targets, snapshot, timestamp]: [RoleKey; 4] = keys.try_into().unwrap();

    // A member of the group (by a supplementary group) signs the repository,
    // document in on stdin, signed document out on stdout. Root metadata is the
    // administrator's: by default members do not reach root keys.
    let root_keyid = root.keyid.clone();
    let work = tempfile::tempdir().unwrap();
    let mut sign = |input: &Path, output: &Path, keyids: &[String]| {
        let user = if keyids.contains(&root_keyid) {
            SERVICE_USER
        } else {
            CLIENT_USER
        };
        let mut args = vec!["sign"];
        for keyid in keyids {
            args.extend(["--key", keyid.as_str()]);
        }
        args.push("-");
        let result = install.cli(user, &args, Some(&fs::read(input)?));
        if !result.success {
            return Err(format!("as {user}: {}", result.stderr).into());
        }
        fs::write(output, result.stdout)?;
        Ok(())
    };
    let repo = RepoBuilder::new(RepoKeys::single(root, targets, snapshot, timestamp))
        .target("app-1.0.tar.gz", b"built by a system-mode client".to_vec())
        .build(&work.path().join("repo"), &mut sign)
        .expect("a member of the allowed group signs the repository");
    verify_with_python_tuf(&repo.dir)
        .expect("python-tuf rejected a repository signed through system mode");
    let listed = install.cli_ok(CLIENT_USER, &["key", "list"]);
    for keyid in &keyids {
        assert!(
            listed.contains(keyid.as_str()),
            "{keyid} not listed: {listed}"
        );
    }

    // What a member may not do, refused by the policy naming the permission: sign
    // with the root key, create keys.
    let root_signature = install.cli(
        CLIENT_USER,
        &["sign-raw", "--key", &keyids[0], "-"],
        Some(b"a new root"),
    );
    assert!(!root_signature.success, "a member signed with the root key");
    assert!(
        root_signature.stderr.contains("is not allowed `sign`")
            && root_signature.stderr.contains("root key"),
        "{}",
        root_signature.stderr
    );
    let generate = install.cli(
        CLIENT_USER,
        &["key", "generate", "--gun", GUN, "--role", "targets"],
        None,
    );
    assert!(!generate.success, "a member created a key");
    assert!(
        generate.stderr.contains("is not allowed `keys_admin`"),
        "{}",
        generate.stderr
    );
    // Whoever reaches the socket without being an owner or a member (root here,
    // which file permissions do not stop) is refused by the daemon: PERMISSION_DENIED.
    let root_caller = Command::new(install.bin("tufkey"))
        .env("TUFKEY_SERVER_UID", install.service_uid.to_string())
        .args([
            "--socket",
            install.socket().to_str().unwrap(),
            "key",
            "list",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&root_caller.stderr);
    assert!(!root_caller.status.success(), "uid 0 listed keys");
    assert!(
        stderr.contains("uid 0 is not allowed `keys_read`"),
        "{stderr}"
    );

    // A user outside the group never reaches the daemon: the socket's directory
    // keeps it out, and the CLI says so rather than "is it running?".
    let outsider = install.cli(OTHER_USER, &["key", "list"], None);
    assert!(!outsider.success, "a user outside the group listed keys");
    assert!(
        outsider
            .stderr
            .contains("not allowed to open tufkeyd's socket")
            && outsider.stderr.contains("add you to the group"),
        "the refusal is not clear: {}",
        outsider.stderr
    );

    // The member can use the keys, not take them: not the key files, not the
    // secret, not the daemon's memory.
    let key_file = install
        .store()
        .join("keys")
        .join(format!("{}.key", keyids[0]));
    assert!(key_file.exists(), "{}", key_file.display());
    let store = install.store();
    for (path, what) in [
        (&key_file, "read a key file"),
        (&store.join("store.json"), "read store.json"),
        (&install.secret(), "read the keystore secret"),
    ] {
        assert_refused(CLIENT_USER, "cat", &[path.to_str().unwrap()], what);
    }
    assert_refused(
        CLIENT_USER,
        "ls",
        &[store.to_str().unwrap()],
        "list the store",
    );
    let pid = daemon.pid().to_string();
    for (file, what) in [
        ("environ", "read the daemon's environment"),
        ("mem", "read the daemon's memory"),
    ] {
        let path = format!("/proc/{pid}/{file}");
        assert_refused(CLIENT_USER, "head", &["-c", "64", &path], what);
    }
    assert_refused(
        CLIENT_USER,
        "strace",
        &["-p", &pid, "-e", "trace=none"],
        "ptrace the daemon",
    );
    // Non-dumpable: the kernel gives the daemon's /proc files to root, so not even
    // another process of the service user can read its memory.
    assert_eq!(fs::metadata(format!("/proc/{pid}/mem")).unwrap().uid(), 0);

    // Restarted, the daemon unlocks from the file it made, and the member signs again.
    daemon.stop();
    let daemon = ServiceDaemon::start(&install);
    let status: Value =
        serde_json::from_str(&install.cli_ok(SERVICE_USER, &["--json", "status"])).unwrap();
    assert_eq!(status["locked"], false, "{status}");
    assert_eq!(status["passphrase_source"], "secret_file", "{status}");
    let payload = install.cli(
        CLIENT_USER,
        &["sign-raw", "--key", &keyids[1], "-"],
        Some(b"after a restart"),
    );
    assert!(
        payload.success,
        "signing after a restart: {}",
        payload.stderr
    );
    daemon.stop();
}

/// The unit files as systemd reads them: the system unit verifies cleanly and its
/// hardening scores "OK" or better in `systemd-analyze security`.
#[test]
fn unit_files_pass_systemd_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let udev = workspace_root().join("udev");
    let binary = bin_dir().join("tufkeyd");
    for unit in ["tufkeyd.service", "tufkeyd-system.service"] {
        // `verify` wants ExecStart= to exist: point it at the built daemon.
        let text = fs::read_to_string(udev.join(unit))
            .unwrap()
            .replace("/usr/bin/tufkeyd", binary.to_str().unwrap());
        let copy = dir.path().join(unit);
        fs::write(&copy, text).unwrap();
        let output = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .current_dir(dir.path())
            .output()
            .expect("systemd-analyze (Debian systemd; scripts/install-deps.sh)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{unit}: {stderr}");
        assert!(
            !stderr.contains(unit),
            "systemd-analyze verify warns about {unit}: {stderr}"
        );
    }

    let output = run_ok(
        "systemd-analyze",
        &[
            "security",
            "--offline=yes",
            "--threshold=20",
            udev.join("tufkeyd-system.service").to_str().unwrap(),
        ],
    );
    let exposure: f64 = output
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for tufkeyd-system.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in: {output}"));
    assert!(exposure <= 2.0, "exposure {exposure}: {output}");

    // sysusers.d, applied to an empty root: the user, the group and the membership
    // the unit relies on.
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    let applied = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg("-")
        .stdin(fs::File::open(udev.join("tufkey.sysusers")).unwrap())
        .output()
        .unwrap();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let groups = fs::read_to_string(root.path().join("etc/group")).unwrap();
    assert!(
        groups
            .lines()
            .any(|line| line.starts_with("tufkey-clients:") && line.ends_with(":tufkey")),
        "tufkey is not a member of tufkey-clients: {groups}"
    );
    let users = fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    assert!(
        users
            .lines()
            .any(|line| line.starts_with("tufkey:") && line.contains(":/var/lib/tufkey:")),
        "{users}"
    );
}
