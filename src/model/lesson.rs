//! Lesson steps: the demo step protocol (a line a program prints on stdout) and what the
//! views show of a lesson: every step announced so far and whether the program waits at one.
//!
//! The protocol line is `@@forkscope-step ` followed by a JSON object with `title` and,
//! optionally, `text`, `question` and `hold` (`docs/teaching.md`).

use serde::{Deserialize, Serialize};

use super::event::EventBody;

/// What starts a step line on a program's stdout.
pub const STEP_PREFIX: &str = "@@forkscope-step ";

/// The words of one step, as the program announced them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepText {
    pub title: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub question: String,
    /// False: the program goes on by itself (it does not wait for the release).
    #[serde(default = "waits_by_default")]
    pub hold: bool,
}

fn waits_by_default() -> bool {
    true
}

/// Longest title, text or question kept (a runaway program cannot fill the panel).
const MAX_FIELD: usize = 4096;

/// The step a protocol line announces; None when the line is not a (valid) step line.
pub fn parse_step_line(line: &str) -> Option<StepText> {
    let json = line.strip_prefix(STEP_PREFIX)?.trim();
    if !json.starts_with('{') {
        return None; // serde would take a struct from an array too
    }
    let mut step: StepText = serde_json::from_str(json).ok()?;
    if step.title.trim().is_empty() {
        return None;
    }
    for field in [&mut step.title, &mut step.text, &mut step.question] {
        if field.len() > MAX_FIELD {
            let mut end = MAX_FIELD;
            while !field.is_char_boundary(end) {
                end -= 1;
            }
            field.truncate(end);
        }
    }
    Some(step)
}

/// Who let a held program go on past a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepReleaser {
    /// A person pressed `.` (or a `next_step` action arrived).
    Key,
    /// `--auto SECS` ran out.
    Auto,
}

/// One announced step.
#[derive(Clone, Debug, PartialEq)]
pub struct LessonStep {
    pub n: u32,
    pub t: f64,
    pub pid: i32,
    pub words: StepText,
    /// Forkscope holds the program at this step until it is released.
    pub held: bool,
    /// When it was released (None while held, or when it never was).
    pub released: Option<f64>,
}

/// Every step so far, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lesson {
    pub steps: Vec<LessonStep>,
}

/// Steps kept (a program printing step lines in a loop cannot grow the state without end).
const MAX_STEPS: usize = 1000;

impl Lesson {
    /// The newest step.
    pub fn current(&self) -> Option<&LessonStep> {
        self.steps.last()
    }

    /// The step the program waits at, if forkscope holds it.
    pub fn waiting(&self) -> Option<&LessonStep> {
        self.current().filter(|s| s.held && s.released.is_none())
    }

    /// Applies a `step` or `step_release` event; other events change nothing.
    pub fn apply(&mut self, t: f64, body: &EventBody) {
        match body {
            EventBody::Step {
                pid,
                n,
                title,
                text,
                question,
                held,
            } => {
                if self.steps.len() >= MAX_STEPS {
                    self.steps.remove(0);
                }
                self.steps.push(LessonStep {
                    n: *n,
                    t,
                    pid: *pid,
                    words: StepText {
                        title: title.clone(),
                        text: text.clone(),
                        question: question.clone(),
                        hold: *held,
                    },
                    held: *held,
                    released: None,
                });
            }
            EventBody::StepRelease { n, .. } => {
                if let Some(step) = self.steps.iter_mut().rev().find(|s| s.n == *n) {
                    step.released = Some(t);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_step_lines_and_refuses_everything_else() {
        let step = parse_step_line(
            r#"@@forkscope-step {"title":"fork","text":"two processes","question":"why?"}"#,
        )
        .unwrap();
        assert_eq!(step.title, "fork");
        assert_eq!(step.question, "why?");
        let short = parse_step_line(r#"@@forkscope-step {"title":"only a title"}"#).unwrap();
        assert_eq!(short.text, "");
        assert!(short.hold, "a step holds unless it says otherwise");
        let told = parse_step_line(r#"@@forkscope-step {"title":"t","hold":false}"#).unwrap();
        assert!(!told.hold);
        for line in [
            "plain output",
            "@@forkscope-step",
            "@@forkscope-step {oops",
            r#"@@forkscope-step {"title":""}"#,
            r#"@@forkscope-step {"text":"no title"}"#,
            r#"@@forkscope-step ["title"]"#,
            r#" @@forkscope-step {"title":"indented"}"#,
        ] {
            assert_eq!(parse_step_line(line), None, "{line}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_line_parses_or_is_refused_without_panicking(line in ".*") {
            let _ = parse_step_line(&line);
            let _ = parse_step_line(&format!("{STEP_PREFIX}{line}"));
        }

        #[test]
        fn any_words_round_trip(title in ".*", text in ".*", question in ".*", hold: bool) {
            let words = StepText { title, text, question, hold };
            let line = format!("{STEP_PREFIX}{}", serde_json::to_string(&words).unwrap());
            match parse_step_line(&line) {
                None => proptest::prop_assert!(words.title.trim().is_empty()),
                Some(back) => {
                    let short = [&words.title, &words.text, &words.question]
                        .iter()
                        .all(|f| f.len() <= MAX_FIELD);
                    if short {
                        proptest::prop_assert_eq!(back, words);
                    }
                }
            }
        }
    }

    #[test]
    fn long_fields_are_cut_on_a_character_boundary() {
        let title = "é".repeat(5000);
        let line = format!("{STEP_PREFIX}{{\"title\":\"{title}\"}}");
        let step = parse_step_line(&line).unwrap();
        assert!(step.title.len() <= MAX_FIELD);
        assert!(step.title.chars().all(|c| c == 'é'));
    }

    #[test]
    fn steps_are_held_until_released() {
        let mut lesson = Lesson::default();
        let step = |n| EventBody::Step {
            pid: 7,
            n,
            title: format!("step {n}"),
            text: String::new(),
            question: String::new(),
            held: true,
        };
        lesson.apply(1.0, &step(1));
        assert_eq!(lesson.waiting().map(|s| s.n), Some(1));
        lesson.apply(
            2.0,
            &EventBody::StepRelease {
                pid: 7,
                n: 1,
                by: StepReleaser::Key,
            },
        );
        assert_eq!(lesson.waiting(), None);
        assert_eq!(lesson.steps[0].released, Some(2.0));
        lesson.apply(3.0, &step(2));
        assert_eq!(
            lesson.current().map(|s| s.words.title.as_str()),
            Some("step 2")
        );
        assert_eq!(lesson.waiting().map(|s| s.n), Some(2));
    }
}
