//! Colours and emphasis. Colour tells the story but never alone: every state also has a word
//! and a symbol, and with `NO_COLOR` set the theme uses no colour at all.

use ratatui::style::{Color, Modifier, Style};

use super::format::Condition;

/// The styles the views use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Honours `NO_COLOR` (any non-empty value).
    pub fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme { color: !no_color }
    }

    pub fn monochrome() -> Theme {
        Theme { color: false }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    pub fn condition(self, condition: Condition) -> Style {
        match condition {
            Condition::Running | Condition::Sleeping | Condition::Starting => self.fg(Color::Green),
            Condition::DiskWait | Condition::Stopped => self.fg(Color::Cyan),
            Condition::Stopping => self.fg(Color::Yellow),
            Condition::Zombie => self.fg(Color::Magenta),
            Condition::EndedBad => self.fg(Color::Red).add_modifier(Modifier::DIM),
            Condition::EndedOk => self.fg(Color::DarkGray).add_modifier(Modifier::DIM),
        }
    }

    pub fn selected(self) -> Style {
        if self.color {
            Style::default()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    pub fn header(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn pool(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn stderr(self) -> Style {
        self.fg(Color::Red)
    }

    pub fn dim(self) -> Style {
        Style::default().add_modifier(Modifier::DIM)
    }

    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn highlight(self) -> Style {
        if self.color {
            Style::default().bg(Color::Yellow).fg(Color::Black)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn focus_border(self, focused: bool) -> Style {
        match (focused, self.color) {
            (true, true) => Style::default().fg(Color::Cyan),
            (true, false) => Style::default().add_modifier(Modifier::BOLD),
            (false, _) => Style::default().add_modifier(Modifier::DIM),
        }
    }
}
