//! `tufkeyd --print-completions SHELL` and `tufkeyd --print-man`: shell completion
//! scripts and the man page, rendered from the one declaration of the settings so
//! that they list exactly the flags `--help` does. Like `--help`, each prints and
//! exits before anything else happens; both are hidden, being for packagers.

use super::Settings;
use clap::{value_parser, Arg, ArgAction, ArgMatches, Command, CommandFactory};
use clap_complete::Shell;
use std::io::Write;

const COMPLETIONS: &str = "print-completions";
const MAN: &str = "print-man";

/// `command` with the two flags, each allowed only on its own.
pub(super) fn with_generators(command: Command) -> Command {
    command
        .arg(
            Arg::new(COMPLETIONS)
                .long(COMPLETIONS)
                .value_name("SHELL")
                .value_parser(value_parser!(Shell))
                .exclusive(true)
                .hide(true),
        )
        .arg(
            Arg::new(MAN)
                .long(MAN)
                .action(ArgAction::SetTrue)
                .exclusive(true)
                .hide(true),
        )
}

/// When `matches` asks for completions or the man page: prints it and exits.
pub(super) fn print_if_asked(matches: &ArgMatches) {
    let mut text = Vec::new();
    if let Some(shell) = matches.get_one::<Shell>(COMPLETIONS) {
        clap_complete::generate(*shell, &mut documented(), "tufkeyd", &mut text);
    } else if matches.get_flag(MAN) {
        if let Err(error) = clap_mangen::Man::new(documented()).render(&mut text) {
            exit_with(&format!("tufkeyd: rendering the man page: {error}"));
        }
    } else {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&text).and_then(|()| stdout.flush()) {
        Ok(()) => std::process::exit(0),
        Err(error) => exit_with(&format!("tufkeyd: writing to standard output: {error}")),
    }
}

fn exit_with(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(1)
}

/// The settings as a reader sees them: with their environment variables, which the
/// parser leaves to the environment layer.
fn documented() -> Command {
    Settings::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_lists_every_setting_and_its_variable() {
        let mut page = Vec::new();
        clap_mangen::Man::new(documented())
            .render(&mut page)
            .unwrap();
        let page = String::from_utf8(page).unwrap();
        for arg in Settings::command().get_arguments() {
            if let Some(long) = arg.get_long() {
                // roff escapes the dashes of a flag.
                assert!(
                    page.contains(&format!("\\-\\-{}", long.replace('-', "\\-"))),
                    "--{long}"
                );
            }
            if let Some(env) = arg.get_env() {
                assert!(page.contains(env.to_str().unwrap()), "{env:?}");
            }
        }
    }

    #[test]
    fn each_generator_stands_alone() {
        let command = with_generators(super::super::parser());
        assert!(command
            .clone()
            .try_get_matches_from(["tufkeyd", "--print-man", "--no-keyring"])
            .is_err());
        let matches = command
            .try_get_matches_from(["tufkeyd", "--print-completions", "bash"])
            .unwrap();
        assert_eq!(matches.get_one::<Shell>(COMPLETIONS), Some(&Shell::Bash));
    }
}
