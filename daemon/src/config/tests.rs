//! The settings' tests: defaults, precedence, every flag from every source, the
//! README table.

use super::*;
use clap::{ArgAction, CommandFactory};
use std::collections::HashMap;
use std::io::Write;

/// A fixed environment plus `vars`, so no test reads (or races on) the process's.
fn env_with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let mut map: HashMap<String, OsString> = HashMap::new();
    for (name, value) in [("XDG_RUNTIME_DIR", "/run/user/7"), ("HOME", "/home/test")]
        .iter()
        .chain(vars)
    {
        map.insert(name.to_string(), value.into());
    }
    move |name| map.get(name).cloned()
}

fn resolve(argv: &[&str], vars: &[(&str, &str)]) -> Result<Config> {
    Config::resolve_from(
        std::iter::once("tufkeyd").chain(argv.iter().copied()),
        env_with(vars),
    )
}

/// A `--config` file holding `text`.
fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn path_of(file: &tempfile::NamedTempFile) -> &str {
    file.path().to_str().unwrap()
}

#[test]
fn nothing_configured_gives_the_defaults() {
    let config = resolve(&[], &[]).unwrap();
    assert_eq!(
        config.listen,
        ListenConfig {
            socket: PathBuf::from("/run/user/7/tufkey/tufkeyd.sock"),
            allow_uids: vec![nix::unistd::getuid().as_raw()],
            allow_gids: vec![],
            max_message_bytes: 64 * 1024 * 1024,
            tcp: None,
        }
    );
    assert_eq!(
        config.software.dir,
        PathBuf::from("/home/test/.local/share/tufkey")
    );
    assert!(config.software.use_keyring);
    assert_eq!(config.software.secret_file, None);
    assert_eq!(config.software.idle_timeout, Duration::from_secs(900));
    let yubikey = config.yubikey.expect("YubiKeys are on by default");
    assert_eq!(yubikey.pin_cache, Duration::from_secs(900));
    assert!(yubikey.use_keyring);
    assert_eq!(
        config.notary,
        NotaryConfig {
            backend: "software".into(),
            yubikey_serial: None
        }
    );
}

#[test]
fn the_limits_section_defaults_are_the_settings_defaults() {
    assert_eq!(resolve(&[], &[]).unwrap().limits, LimitsConfig::default());
}

#[test]
fn zero_limits_are_refused_naming_the_setting() {
    for flag in [
        "--max-connections",
        "--max-concurrent-streams",
        "--request-timeout-secs",
        "--tls-handshake-timeout-secs",
        "--tcp-keepalive-secs",
    ] {
        let error = resolve(&[flag, "0"], &[]).unwrap_err().to_string();
        assert!(
            error.contains(flag) && error.contains("at least 1"),
            "{error}"
        );
    }
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let file = toml_file(
        "store = \"/file\"\nsocket = \"/file.sock\"\nidle_lock_secs = 5\nno_keyring = true\n",
    );
    let config = resolve(
        &["--config", path_of(&file), "--socket", "/flag.sock"],
        &[("TUFKEYD_STORE", "/env"), ("TUFKEYD_SOCKET", "/env.sock")],
    )
    .unwrap();
    assert_eq!(config.listen.socket, PathBuf::from("/flag.sock"));
    assert_eq!(config.software.dir, PathBuf::from("/env"));
    assert_eq!(config.software.idle_timeout, Duration::from_secs(5));
    assert!(!config.software.use_keyring);
    assert!(!config.yubikey.unwrap().use_keyring);
}

#[test]
fn switches_work_bare_and_with_a_value() {
    let config = resolve(&["--no-keyring", "--no-yubikey"], &[]).unwrap();
    assert!(!config.software.use_keyring);
    assert!(config.yubikey.is_none());

    let config = resolve(&[], &[("TUFKEYD_NO_YUBIKEY", "1")]).unwrap();
    assert!(config.yubikey.is_none());
    let config = resolve(&["--no-yubikey=false"], &[("TUFKEYD_NO_YUBIKEY", "true")]).unwrap();
    assert!(config.yubikey.is_some(), "the flag beats the environment");
}

#[test]
fn lists_repeat_as_flags_and_are_comma_separated_in_the_environment() {
    let config = resolve(&["--allow-uid", "1000", "--allow-uid", "1001"], &[]).unwrap();
    assert_eq!(config.listen.allow_uids, vec![1000, 1001]);
    let config = resolve(&[], &[("TUFKEYD_ALLOW_UID", "1000, 1001")]).unwrap();
    assert_eq!(config.listen.allow_uids, vec![1000, 1001]);
}

#[test]
fn a_system_service_gets_systemds_directories_and_credential() {
    let systemd = [
        ("STATE_DIRECTORY", "/var/lib/tufkey"),
        ("CREDENTIALS_DIRECTORY", "/run/credentials/tufkeyd.service"),
    ];
    let config = resolve(&["--allow-gid", "990", "--allow-gid", "991"], &systemd).unwrap();
    assert_eq!(config.software.dir, PathBuf::from("/var/lib/tufkey"));
    assert_eq!(
        config.software.secret_file,
        Some(SecretFile::Credential(PathBuf::from(
            "/run/credentials/tufkeyd.service/tufkey-secret"
        )))
    );
    assert_eq!(config.listen.allow_gids, vec![990, 991]);
    let config = resolve(&["--allow-gid", "root"], &[]).unwrap();
    assert_eq!(
        config.listen.allow_gids,
        vec![0],
        "a group name is looked up"
    );
    let error = resolve(&["--allow-gid", "no-such-group-tufkey"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("--allow-gid no-such-group-tufkey: no such group"),
        "{error}"
    );
    let config = resolve(&["--secret-file", "/etc/tufkey/secret"], &systemd).unwrap();
    assert_eq!(
        config.software.secret_file,
        Some(SecretFile::Setting(PathBuf::from("/etc/tufkey/secret"))),
        "--secret-file beats the systemd credential"
    );
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let error = resolve(&[], &[("TUFKEYD_IDLE_LOCK_SECS", "soon")]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("TUFKEYD_IDLE_LOCK_SECS=\"soon\""),
        "{error}"
    );
}

#[test]
fn the_config_file_comes_from_the_flag_else_the_environment() {
    let from_env = toml_file("store = \"/from-env-file\"\n");
    let from_flag = toml_file("store = \"/from-flag-file\"\n");
    let env = [("TUFKEYD_CONFIG", path_of(&from_env))];
    assert_eq!(
        resolve(&[], &env).unwrap().software.dir,
        PathBuf::from("/from-env-file")
    );
    assert_eq!(
        resolve(&["--config", path_of(&from_flag)], &env)
            .unwrap()
            .software
            .dir,
        PathBuf::from("/from-flag-file")
    );
}

#[test]
fn tcp_listener_comes_from_the_file_with_flags_winning() {
    let file = toml_file(
        "listen_tcp = \"127.0.0.1:7899\"\ntls_cert = \"/f/signer.crt\"\ntls_key = \"/f/signer.key\"\n\
         tls_client_ca = \"/f/ca.crt\"\ntls_allow_subject = [\"notary-server\"]\n",
    );
    let tcp = resolve(
        &["--config", path_of(&file), "--tls-cert", "/flag/signer.crt"],
        &[],
    )
    .unwrap()
    .listen
    .tcp
    .unwrap();
    assert_eq!(tcp.listen, "127.0.0.1:7899".parse().unwrap());
    assert_eq!(tcp.cert, PathBuf::from("/flag/signer.crt"));
    assert_eq!(tcp.key, PathBuf::from("/f/signer.key"));
    assert_eq!(tcp.client_ca, PathBuf::from("/f/ca.crt"));
    assert_eq!(tcp.allowed_subjects, vec!["notary-server".to_string()]);
}

#[test]
fn tcp_without_tls_files_or_tls_without_tcp_is_refused() {
    let missing_ca = resolve(
        &[
            "--listen-tcp",
            "127.0.0.1:7899",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
        ],
        &[],
    )
    .unwrap_err();
    assert!(
        missing_ca.to_string().contains("--tls-client-ca"),
        "{missing_ca}"
    );
    let no_address = resolve(&["--tls-cert", "c"], &[]).unwrap_err();
    assert!(
        no_address.to_string().contains("--listen-tcp"),
        "{no_address}"
    );
    let bad_address = resolve(&["--listen-tcp", "nowhere"], &[]).unwrap_err();
    assert!(
        bad_address.to_string().contains("HOST:PORT"),
        "{bad_address}"
    );
}

#[test]
fn unknown_config_keys_are_named() {
    let file = toml_file("sokcet = \"/x\"\n");
    let error = resolve(&["--config", path_of(&file)], &[]).unwrap_err();
    assert!(error.to_string().contains("sokcet"), "{error}");
}

#[test]
fn old_config_keys_name_their_new_spelling() {
    for (old, new) in [
        ("keyring = false", "no_keyring = true"),
        ("yubikey = false", "no_yubikey = true"),
        ("allow_uids = [1]", "allow_uid"),
        ("tls_allowed_subjects = [\"a\"]", "tls_allow_subject"),
    ] {
        let file = toml_file(old);
        let error = resolve(&["--config", path_of(&file)], &[]).unwrap_err();
        assert!(error.to_string().contains(new), "{old}: {error}");
    }
}

/// The settings `tufkeyd --help` shows, `--config` included.
fn settings_in_help() -> Vec<clap::Arg> {
    let mut command = Settings::command();
    command.build();
    command
        .get_arguments()
        .filter(|arg| {
            !arg.is_hide_set()
                && !matches!(
                    arg.get_action(),
                    ArgAction::Help
                        | ArgAction::HelpShort
                        | ArgAction::HelpLong
                        | ArgAction::Version
                )
        })
        .cloned()
        .collect()
}

fn long(arg: &clap::Arg) -> &str {
    arg.get_long().expect("every setting has a --flag")
}

fn env_name(arg: &clap::Arg) -> &str {
    arg.get_env()
        .and_then(|name| name.to_str())
        .unwrap_or_else(|| panic!("--{}: declare env = \"TUFKEYD_...\"", long(arg)))
}

fn repeatable(arg: &clap::Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// A switch: `--no-keyring` alone means true.
fn switch(arg: &clap::Arg) -> bool {
    arg.get_num_args()
        .is_some_and(|count| count.min_values() == 0)
}

#[test]
fn every_setting_is_named_by_one_rule() {
    for arg in settings_in_help() {
        let long = long(&arg);
        assert_eq!(
            env_name(&arg),
            format!("TUFKEYD_{}", long.replace('-', "_").to_uppercase()),
            "--{long}: environment variable"
        );
        assert_eq!(
            arg.get_id().as_str(),
            long.replace('-', "_"),
            "--{long}: the field (and TOML key) must be the flag's name in snake_case"
        );
        assert!(
            arg.get_help().is_some() && arg.get_long_help().is_none(),
            "--{long}: document it in one paragraph, its --help line and README description"
        );
    }
}

/// Two different values of a setting; the first is not its default.
fn samples(arg: &clap::Arg) -> [&'static str; 2] {
    let value_name = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map_or("", |name| name.as_str());
    match value_name {
        "PATH" | "DIR" | "FILE" => ["/first/x", "/second/x"],
        "UID" | "GROUP" => ["4242", "4343"],
        "BYTES" => ["1000", "2000"],
        "SECS" => ["11", "22"],
        "BOOL" => ["true", "false"],
        "HOST:PORT" => ["127.0.0.1:7001", "127.0.0.1:7002"],
        "CN" => ["alice", "bob"],
        "NAME" => ["yubikey", "elsewhere"],
        "SERIAL" => ["111", "222"],
        "COUNT" => ["7", "9"],
        "URL" => ["postgres://a@db1:5432/k", "postgres://b@db2:5432/k"],
        other => panic!(
            "--{}: add two sample values for {other:?} to `samples`",
            long(arg)
        ),
    }
}

/// `sample` as a TOML value for `arg`'s key.
fn toml_value(arg: &clap::Arg, sample: &str) -> String {
    let scalar = if sample.parse::<i64>().is_ok() || sample.parse::<bool>().is_ok() {
        sample.to_string()
    } else {
        format!("{sample:?}")
    };
    if repeatable(arg) {
        format!("[{scalar}]")
    } else {
        scalar
    }
}

/// A complete TCP listener, so the TLS settings can be set one at a time.
const TCP_LISTENER: [(&str, &str); 4] = [
    ("listen-tcp", "127.0.0.1:7899"),
    ("tls-cert", "/base/signer.crt"),
    ("tls-key", "/base/signer.key"),
    ("tls-client-ca", "/base/ca.crt"),
];

#[test]
fn every_setting_in_help_works_from_each_source_and_flag_beats_env_beats_file() {
    let settings = settings_in_help();
    assert!(settings.len() > 10, "{} settings", settings.len());
    for arg in settings.iter().filter(|arg| long(arg) != "config") {
        let long = long(arg);
        let env_name = env_name(arg);
        let key = arg.get_id().as_str();
        let [a, b] = samples(arg);
        let base: Vec<String> = TCP_LISTENER
            .iter()
            .filter(|(flag, _)| *flag != long)
            .map(|(flag, value)| format!("--{flag}={value}"))
            .collect();
        // The resolved Config (or error), as text, from the given sources.
        let run = |flag: Option<&str>, env: Option<&str>, file: Option<&str>| {
            let mut argv = base.clone();
            argv.extend(flag.map(|value| format!("--{long}={value}")));
            let file =
                file.map(|value| toml_file(&format!("{key} = {}\n", toml_value(arg, value))));
            argv.extend(
                file.as_ref()
                    .map(|file| format!("--config={}", path_of(file))),
            );
            let vars: Vec<(&str, &str)> = env.map(|value| (env_name, value)).into_iter().collect();
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            format!("{:?}", resolve(&argv, &vars))
        };
        let from_flag = run(Some(a), None, None);
        assert_ne!(
            from_flag,
            run(None, None, None),
            "--{long}={a} changes nothing"
        );
        assert_ne!(
            from_flag,
            run(Some(b), None, None),
            "--{long}: {a} and {b} resolve alike"
        );
        assert_eq!(run(None, Some(a), None), from_flag, "{env_name}={a} alone");
        assert_eq!(
            run(None, None, Some(a)),
            from_flag,
            "TOML {key} = {a} alone"
        );
        assert_eq!(
            run(Some(a), Some(b), None),
            from_flag,
            "--{long} beats {env_name}"
        );
        assert_eq!(
            run(None, Some(a), Some(b)),
            from_flag,
            "{env_name} beats TOML {key}"
        );
        assert_eq!(
            run(Some(a), Some(b), Some(b)),
            from_flag,
            "--{long} beats both"
        );
    }
}

/// The README's table of settings, rendered from [`Settings`].
fn settings_table() -> String {
    let mut table = String::from(
        "| flag | environment variable | TOML key | default | what it does |\n|---|---|---|---|---|\n",
    );
    for arg in settings_in_help() {
        let long = long(&arg);
        let flag = match arg.get_value_names().and_then(|names| names.first()) {
            Some(value) if !switch(&arg) => format!("`--{long} {value}`"),
            _ => format!("`--{long}`"),
        };
        let mut env = format!("`{}`", env_name(&arg));
        let mut key = format!("`{}`", arg.get_id());
        if repeatable(&arg) {
            env.push_str(" (comma-separated)");
            key.push_str(" (list)");
        }
        if switch(&arg) {
            env = format!("`{}=true`", env_name(&arg));
            key = format!("`{} = true`", arg.get_id());
        }
        if long == "config" {
            key = "—".into();
        }
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let (what, default_in_help) = match help.split_once(" [default: ") {
            Some((what, default)) => (what.to_string(), default.strip_suffix(']')),
            None => (help.clone(), None),
        };
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|value| format!("`{}`", value.to_string_lossy()))
            .collect();
        let default = match (defaults.is_empty(), default_in_help) {
            (false, _) => defaults.join(", "),
            (true, Some(text)) => text.to_string(),
            (true, None) => "none".to_string(),
        };
        let row = [flag, env, key, default, what].map(|cell| cell.replace('|', "\\|"));
        table.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    table
}

#[test]
fn readme_settings_table_is_current() {
    const START: &str = "<!-- settings-table:start -->\n";
    const END: &str = "<!-- settings-table:end -->";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(START)
        .expect("README.md lacks the settings-table:start marker")
        + START.len();
    let end = start
        + readme[start..]
            .find(END)
            .expect("README.md lacks the settings-table:end marker");
    let table = settings_table();
    if readme[start..end] == table {
        return;
    }
    if std::env::var_os("UPDATE_SETTINGS_TABLE").is_some() {
        std::fs::write(
            &path,
            format!("{}{table}{}", &readme[..start], &readme[end..]),
        )
        .unwrap();
        return;
    }
    panic!(
        "README.md's settings table differs from the declaration in daemon/src/config/mod.rs.\n\
         Regenerate it: UPDATE_SETTINGS_TABLE=1 cargo test -p tufkeyd --lib readme_settings_table\n\
         It should read:\n{table}"
    );
}
