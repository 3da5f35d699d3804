use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Logs go to stderr so that commands like `token create` keep stdout for their answer. Every
/// event is one line: control characters inside it (a newline in a typed e-mail, an identity
/// provider's error text, a terminal escape) are written escaped, so text from outside can
/// never forge a log line.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(OneLine(std::io::stderr)).try_init();
}

/// `text` with every control character (but tab) and every Unicode line or paragraph separator
/// written as an escape (`\n`, `\u{2028}`).
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A writer of whole formatted events that escapes control characters inside each, keeping
/// only the event's own final newline.
struct OneLine<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLine<M> {
    type Writer = Escaping<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        Escaping(self.0.make_writer())
    }
}

struct Escaping<W>(W);

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let mut line = escape_controls(body);
        line.push_str(end);
        self.0.write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_outside_cannot_forge_a_log_line() {
        assert_eq!(escape_controls("ann@x.com\nINFO forged: admin logged in"), "ann@x.com\\nINFO forged: admin logged in");
        assert_eq!(escape_controls("a\r\u{1b}[31mred\u{2028}b\u{85}"), "a\\r\\u{1b}[31mred\\u{2028}b\\u{85}");
        assert_eq!(escape_controls("tab\tstays"), "tab\tstays");
        let mut out = Vec::new();
        Escaping(&mut out).write_all(b"event with\nnewline\n").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "event with\\nnewline\n");
    }
}
