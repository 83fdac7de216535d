//! `tufkey completions SHELL` and `tufkey man`: shell completion scripts and man pages
//! rendered from the clap declaration of the CLI itself, so that they list exactly the
//! commands and flags `--help` does and a package can generate them at install time.

use super::Cli;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::io::Write;
use std::path::{Path, PathBuf};
use tufkey::{Error, Result};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for (e.g. `tufkey completions bash >
    /// /usr/share/bash-completion/completions/tufkey`).
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write tufkey.1 and one page per subcommand (tufkey-key-generate.1 ...) into DIR
    /// instead of printing tufkey.1 (e.g. `tufkey man | man -l -`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`.
pub fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "tufkey", &mut script);
    print(&script)
}

/// Prints tufkey.1, or writes every page into `--out`.
pub fn man(args: &ManArgs) -> Result<()> {
    let Some(dir) = &args.out else {
        let mut page = Vec::new();
        // As in the pages `--out` writes: no `help` subcommand, which has no page.
        clap_mangen::Man::new(Cli::command().disable_help_subcommand(true))
            .render(&mut page)
            .map_err(Error::io("rendering", Path::new("tufkey.1")))?;
        return print(&page);
    };
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(Error::io("writing man pages to", dir))
}

fn print(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(Error::io("writing", Path::new("standard output")))
}
