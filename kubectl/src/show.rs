//! What the cluster and the pods say, made safe for the user's terminal:
//! pod and stream content reaches stderr (a capture's messages, interface
//! names from the pods' network namespaces, the API server's and the
//! kubelet's messages), and a control character there (an escape
//! sequence) would be the terminal's command, not text. Each is shown
//! escaped, as Rust's `{:?}` shows it (`\u{1b}`).

/// `s` on one line: every control character escaped, newlines too.
pub fn line(s: &str) -> String {
    escaped(s, false)
}

/// `s` as lines: every control character but the newline escaped.
pub fn text(s: &str) -> String {
    escaped(s, true)
}

fn escaped(s: &str, newlines: bool) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() && !(newlines && c == '\n') {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{line, text};

    #[test]
    fn escapes_reach_the_terminal_as_text() {
        let hostile = "x\u{1b}]0;PWN\u{7}\u{1b}[2J\r\nnext\u{9b}31m";
        for shown in [line(hostile), text(hostile)] {
            assert!(
                !shown.chars().any(|c| c.is_control() && c != '\n'),
                "{shown:?}"
            );
            assert!(
                shown.contains("x\\u{1b}]0;PWN\\u{7}\\u{1b}[2J\\r"),
                "{shown:?}"
            );
        }
        assert_eq!(line(hostile).lines().count(), 1);
        assert_eq!(text(hostile).lines().count(), 2);
        assert_eq!(line("default/web-0/eth0: ü"), "default/web-0/eth0: ü");
    }
}
