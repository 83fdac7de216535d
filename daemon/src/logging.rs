//! How tufkeyd's log looks depends on where its stderr goes, so that it reads well
//! there: colour only on a terminal (and not with `NO_COLOR`), plain text in a file
//! or pipe, and under systemd (stderr is the journal stream `JOURNAL_STREAM` names,
//! systemd.exec(5)) no timestamps, which journald adds, and each line's level as the
//! `<N>` syslog priority prefix that journald reads from a service's stderr
//! (sd-daemon(3)), so `journalctl -p warning` finds the warnings.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use tracing::{Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Where stderr goes, as far as the log's format is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Destination {
    /// A terminal, and `NO_COLOR` unset or empty (https://no-color.org).
    ColourTerminal,
    /// The journal stream systemd connected stderr to.
    Journal,
    /// Anything else: a file, a pipe, or a terminal with `NO_COLOR`.
    Plain,
}

/// Logs to stderr through `filter`, in the format that suits where stderr goes.
pub fn init(filter: EnvFilter) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match destination() {
        Destination::ColourTerminal => builder.with_ansi(true).init(),
        Destination::Plain => builder.with_ansi(false).init(),
        Destination::Journal => builder
            .with_ansi(false)
            .event_format(SyslogPriority(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_level(false)
                    .with_ansi(false),
            ))
            .init(),
    }
}

fn destination() -> Destination {
    let stderr = std::io::stderr();
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    if journal_stream.is_some_and(|stream| is_stderr_stream(&stream)) {
        Destination::Journal
    } else if stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) {
        Destination::ColourTerminal
    } else {
        Destination::Plain
    }
}

/// Whether `journal_stream` (`DEVICE:INODE`, both decimal) names stderr: systemd sets
/// it for the service's own stderr, and a child whose stderr was redirected inherits
/// the variable but not the stream.
fn is_stderr_stream(journal_stream: &str) -> bool {
    let Some(identity) = parse_journal_stream(journal_stream) else {
        return false;
    };
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata())
        .is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == identity)
}

fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (device, inode) = value.split_once(':')?;
    Some((device.parse().ok()?, inode.parse().ok()?))
}

/// The syslog priority journald gives a line that starts with `<N>`.
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Another event format, with the event's [`priority`] in front of each of its lines
/// (journald makes every line an entry of its own).
struct SyslogPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for SyslogPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut text = String::new();
        self.0
            .format_event(context, Writer::new(&mut text), event)?;
        let priority = priority(event.metadata().level());
        text.lines()
            .try_for_each(|line| writeln!(writer, "<{priority}>{line}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_is_device_colon_inode() {
        assert_eq!(parse_journal_stream("2049:123456"), Some((2049, 123456)));
        assert_eq!(parse_journal_stream("2049"), None);
        assert_eq!(parse_journal_stream("a:1"), None);
        assert_eq!(parse_journal_stream(""), None);
    }

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
        assert_eq!(priority(&Level::TRACE), 7);
    }
}
