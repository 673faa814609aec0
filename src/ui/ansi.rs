//! Child output to styled text: SGR colour sequences become styles; every other escape
//! sequence and control character ([`crate::model::printable::is_terminal_control`], the test
//! that text printed outside the TUI is escaped by) is dropped, and sequences are bounded in length, so no
//! child can move our cursor, switch our screen or make us buffer without end.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// Longest escape sequence honoured; longer ones are dropped whole.
const MAX_SEQUENCE: usize = 64;

/// Parses one line of child output into styled spans on top of `base`.
pub fn styled_line(text: &str, base: Style, color: bool) -> Line<'static> {
    let mut spans = Vec::new();
    let mut current = String::new();
    let mut style = base;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                let mut sequence = String::new();
                match chars.peek() {
                    Some('[') => {
                        chars.next();
                        let mut terminator = None;
                        for next in chars.by_ref() {
                            if ('\x40'..='\x7e').contains(&next) {
                                terminator = Some(next);
                                break;
                            }
                            if sequence.len() >= MAX_SEQUENCE {
                                break;
                            }
                            sequence.push(next);
                        }
                        if terminator == Some('m') && color {
                            if !current.is_empty() {
                                spans.push(Span::styled(std::mem::take(&mut current), style));
                            }
                            style = apply_sgr(style, base, &sequence);
                        }
                    }
                    Some(']') => {
                        // OSC: up to BEL or ESC \, bounded.
                        chars.next();
                        let mut taken = 0;
                        while let Some(next) = chars.next() {
                            taken += 1;
                            if next == '\x07' || taken > MAX_SEQUENCE * 4 {
                                break;
                            }
                            if next == '\x1b' {
                                chars.next();
                                break;
                            }
                        }
                    }
                    _ => {
                        chars.next();
                    }
                }
            }
            '\t' => current.push_str("    "),
            c if crate::model::printable::is_terminal_control(c) => {}
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        spans.push(Span::styled(current, style));
    }
    Line::from(spans)
}

/// Visible text of a line (escape sequences and control characters removed).
pub fn plain(text: &str) -> String {
    styled_line(text, Style::default(), false)
        .spans
        .iter()
        .map(|s| s.content.as_ref())
        .collect()
}

fn apply_sgr(mut style: Style, base: Style, params: &str) -> Style {
    let codes: Vec<u16> = params
        .split(';')
        .map(|p| p.parse().unwrap_or(0))
        .take(16)
        .collect();
    let mut i = 0;
    while i < codes.len() {
        match codes[i] {
            0 => style = base,
            1 => style = style.add_modifier(Modifier::BOLD),
            2 => style = style.add_modifier(Modifier::DIM),
            3 => style = style.add_modifier(Modifier::ITALIC),
            4 => style = style.add_modifier(Modifier::UNDERLINED),
            7 => style = style.add_modifier(Modifier::REVERSED),
            22 => style = style.remove_modifier(Modifier::BOLD | Modifier::DIM),
            23 => style = style.remove_modifier(Modifier::ITALIC),
            24 => style = style.remove_modifier(Modifier::UNDERLINED),
            27 => style = style.remove_modifier(Modifier::REVERSED),
            n @ 30..=37 => style = style.fg(Color::Indexed((n - 30) as u8)),
            39 => style.fg = base.fg,
            n @ 40..=47 => style = style.bg(Color::Indexed((n - 40) as u8)),
            49 => style.bg = base.bg,
            n @ 90..=97 => style = style.fg(Color::Indexed((n - 90 + 8) as u8)),
            n @ 100..=107 => style = style.bg(Color::Indexed((n - 100 + 8) as u8)),
            n @ (38 | 48) => {
                let color = match codes.get(i + 1) {
                    Some(5) => {
                        let c = codes.get(i + 2).map(|v| Color::Indexed(*v as u8));
                        i += 2;
                        c
                    }
                    Some(2) => {
                        let rgb = (codes.get(i + 2), codes.get(i + 3), codes.get(i + 4));
                        i += 4;
                        match rgb {
                            (Some(r), Some(g), Some(b)) => {
                                Some(Color::Rgb(*r as u8, *g as u8, *b as u8))
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                };
                if let Some(color) = color {
                    style = if n == 38 {
                        style.fg(color)
                    } else {
                        style.bg(color)
                    };
                }
            }
            _ => {}
        }
        i += 1;
    }
    style
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_become_styles() {
        let line = styled_line("a\x1b[31mred\x1b[0mb", Style::default(), true);
        assert_eq!(line.spans.len(), 3);
        assert_eq!(line.spans[1].content, "red");
        assert_eq!(line.spans[1].style.fg, Some(Color::Indexed(1)));
        assert_eq!(line.spans[2].style.fg, None);
    }

    #[test]
    fn other_sequences_and_controls_are_dropped() {
        assert_eq!(plain("\x1b[2J\x1b[Hhi\x07\r\x1b]0;title\x07!"), "hi!");
        let long = format!("\x1b[{}mok", "1;".repeat(500));
        assert!(
            plain(&long).ends_with("ok")
                || plain(&long).is_empty()
                || !plain(&long).contains('\x1b')
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_leaks_escapes(text in "\\PC{0,200}|[\\x00-\\x7f]{0,200}") {
            let line = styled_line(&text, Style::default(), true);
            for span in &line.spans {
                proptest::prop_assert!(!span.content.chars().any(|c| c.is_control()));
            }
        }
    }
}
