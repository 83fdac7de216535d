//! Where settings come from and how they are layered: clap's defaults, the
//! `--config` TOML file, `TUFKEYD_*` environment variables and flags, each turned
//! into a TOML table of only the settings it gives, so that they overlay key by key
//! and deserialise back into the one declaration, [`super::Settings`].

use super::Settings;
use crate::error::{Error, Result};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// TOML keys that were renamed when every setting got one name; the error for the
/// old key says the new spelling.
const RENAMED_KEYS: &[(&str, &str)] = &[
    ("keyring", "`keyring = false` is now `no_keyring = true`"),
    ("yubikey", "`yubikey = false` is now `no_yubikey = true`"),
    ("allow_uids", "`allow_uids` is now `allow_uid` (a list)"),
    (
        "tls_allowed_subjects",
        "`tls_allowed_subjects` is now `tls_allow_subject` (a list)",
    ),
];

/// Settings from one source, as a TOML table of the keys it gives, plus the
/// `--config` file it names (the file cannot name itself).
#[derive(Default)]
pub(super) struct Layer {
    pub(super) config: Option<PathBuf>,
    pub(super) settings: toml::Table,
}

impl Layer {
    /// What `matches` got from its arguments.
    pub(super) fn given(matches: &ArgMatches) -> Result<Self> {
        let (settings, table) = from_source(matches, ValueSource::CommandLine)?;
        Ok(Layer {
            config: settings.config,
            settings: table,
        })
    }

    /// Each setting's environment variable, parsed as its flag would be; a list is
    /// comma-separated and an empty variable counts as unset.
    pub(super) fn from_env(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Self> {
        let mut layer = Layer::default();
        for arg in Settings::command().get_arguments() {
            let (Some(name), Some(long)) =
                (arg.get_env().and_then(|name| name.to_str()), arg.get_long())
            else {
                continue;
            };
            let Some(value) = env(name).filter(|value| !value.is_empty()) else {
                continue;
            };
            let value = value.into_string().map_err(|value| {
                Error::Config(format!("{name}={value:?}: not UTF-8; use --{long} instead"))
            })?;
            let values: Vec<&str> = match arg.get_action() {
                ArgAction::Append => value.split(',').map(str::trim).collect(),
                _ => vec![value.as_str()],
            };
            let argv = std::iter::once("tufkeyd".to_string())
                .chain(values.iter().map(|value| format!("--{long}={value}")));
            let matches = parser().try_get_matches_from(argv).map_err(|error| {
                Error::Config(format!("{name}={value:?}: {}", clap_message(&error)))
            })?;
            let one = Layer::given(&matches)?;
            layer.config = layer.config.or(one.config);
            layer.settings.extend(one.settings);
        }
        Ok(layer)
    }
}

/// The command-line parser. The environment is a layer of its own (so its errors
/// name the variable), so clap must not read it; `--help` still lists each variable.
pub(super) fn parser() -> clap::Command {
    let help = Settings::command()
        .mut_args(|arg| arg.hide_env_values(true))
        .render_help();
    Settings::command()
        .mut_args(|arg| arg.env(None::<&str>))
        .override_help(help)
}

/// Every clap `default_value`: the bottom layer.
pub(super) fn defaults() -> Result<toml::Table> {
    let matches = parser()
        .try_get_matches_from(["tufkeyd"])
        .map_err(|error| Error::Config(clap_message(&error)))?;
    Ok(from_source(&matches, ValueSource::DefaultValue)?.1)
}

/// The settings in `matches`, and those that came from `source` as a table.
pub(super) fn from_source(
    matches: &ArgMatches,
    source: ValueSource,
) -> Result<(Settings, toml::Table)> {
    let settings =
        Settings::from_arg_matches(matches).map_err(|error| Error::Config(clap_message(&error)))?;
    let mut table = to_table(&settings)?;
    table.retain(|key, _| matches.value_source(key) == Some(source));
    Ok((settings, table))
}

/// clap's message without its `error: ` prefix and `--help` hint.
pub(super) fn clap_message(error: &clap::Error) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// The settings that are set, as a TOML table (unset ones are left out).
pub(super) fn to_table(settings: &Settings) -> Result<toml::Table> {
    toml::Table::try_from(settings)
        .map_err(|error| Error::Config(format!("a setting does not fit in TOML: {error}")))
}

/// The `--config` file's settings, checked against [`Settings`].
pub(super) fn read_file(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(Error::io("reading config", path))?;
    file_settings(&text).map_err(|reason| Error::Config(format!("{}: {reason}", path.display())))
}

pub(super) fn file_settings(text: &str) -> std::result::Result<toml::Table, String> {
    let settings: Settings = toml::from_str(text).map_err(|error| {
        let keys: toml::Table = toml::from_str(text).unwrap_or_default();
        RENAMED_KEYS
            .iter()
            .find(|(old, _)| keys.contains_key(*old))
            .map_or_else(|| error.to_string(), |(_, hint)| hint.to_string())
    })?;
    to_table(&settings).map_err(|error| error.to_string())
}
