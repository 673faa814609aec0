//! The shared-memory view: a list of segments (size, kind, mappers), the selected segment's
//! decoded contents with what changed since the last refresh highlighted (and marked `*`,
//! changed bytes also reversed, so it reads without colour), and the attach matrix (which
//! process maps which segment).
//!
//! Pure: [`ShmPanel::from_snapshot`] turns a watcher snapshot
//! ([`crate::inspect::shm::watch`]) into plain rows (only the visible window of a large
//! segment), [`render`] draws them. Neither touches the OS.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::inspect::shm::decode::hex::LINE_BYTES;
use crate::model::shm::{Decoded, ShmSnapshot};

/// One segment in the list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentRow {
    pub name: String,
    pub kind: String,
    pub size: u64,
    pub deleted: bool,
    pub mappers: Vec<i32>,
}

/// One line of decoded contents: pieces of text, each flagged changed or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentRow {
    pub pieces: Vec<(String, bool)>,
}

impl ContentRow {
    fn plain(text: String, changed: bool) -> ContentRow {
        ContentRow {
            pieces: vec![(text, changed)],
        }
    }

    pub fn changed(&self) -> bool {
        self.pieces.iter().any(|p| p.1)
    }

    pub fn text(&self) -> String {
        self.pieces.iter().map(|p| p.0.as_str()).collect()
    }
}

/// Everything the view shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShmPanel {
    pub segments: Vec<SegmentRow>,
    /// Index into `segments`.
    pub selected: usize,
    /// What the contents pane shows (`psm_ab: ShareableList 3.9+`).
    pub contents_title: String,
    /// The visible window of decoded rows.
    pub contents: Vec<ContentRow>,
    /// Why the contents could not be read or decoded.
    pub error: Option<String>,
    /// Attach matrix rows: pid, then one mark per segment (`w`, `r`, `f` or `.`).
    pub matrix: Vec<(i32, Vec<char>)>,
    /// No colours (NO_COLOR): highlights use reverse video and the `*` mark only.
    pub no_color: bool,
}

impl ShmPanel {
    /// Builds the panel from a snapshot: `selected` indexes `snapshot.segments`; `scroll` and
    /// `rows` choose the window of decoded rows to keep.
    pub fn from_snapshot(
        snapshot: &ShmSnapshot,
        selected: usize,
        scroll: usize,
        rows: usize,
    ) -> ShmPanel {
        let segments: Vec<SegmentRow> = snapshot
            .segments
            .iter()
            .map(|s| SegmentRow {
                name: s.name.clone(),
                kind: s.kind.as_str().to_string(),
                size: s.size,
                deleted: s.deleted,
                mappers: s.pids.clone(),
            })
            .collect();
        let mut pids: Vec<i32> = snapshot
            .segments
            .iter()
            .flat_map(|s| s.pids.iter().copied())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        let matrix = pids
            .iter()
            .map(|pid| {
                let marks = snapshot
                    .segments
                    .iter()
                    .map(|s| {
                        s.attachments
                            .iter()
                            .find(|a| a.pid == *pid)
                            .map_or('.', |a| a.mark())
                    })
                    .collect();
                (*pid, marks)
            })
            .collect();
        let mut panel = ShmPanel {
            selected: selected.min(segments.len().saturating_sub(1)),
            segments,
            matrix,
            ..ShmPanel::default()
        };
        let selected_seg = snapshot.segments.get(panel.selected);
        match &snapshot.contents {
            None => {}
            Some(Err(e)) => panel.error = Some(e.clone()),
            Some(Ok(c)) => {
                let name = selected_seg
                    .filter(|s| s.id == c.id)
                    .map_or("segment".to_string(), |s| s.name.clone());
                let (what, rows_out) = content_rows(c, scroll, rows);
                panel.contents_title = format!("{name}: {what}");
                panel.contents = rows_out;
                if let Err(e) = &c.decoded {
                    panel.error = Some(e.clone());
                }
            }
        }
        panel
    }
}

fn content_rows(
    c: &crate::model::shm::Contents,
    scroll: usize,
    rows: usize,
) -> (String, Vec<ContentRow>) {
    let changed_item = |i: usize| c.changed_items.binary_search(&i).is_ok();
    let window = |n: usize| scroll.min(n)..scroll.saturating_add(rows).min(n);
    match &c.decoded {
        Ok(Decoded::ShareableList { layout, items }) => (
            format!("ShareableList {layout}, {} items", items.len()),
            window(items.len())
                .map(|i| {
                    ContentRow::plain(format!("[{i}] {}", items[i].display()), changed_item(i))
                })
                .collect(),
        ),
        Ok(Decoded::Typed { ty, values, .. }) => (
            format!("{ty} array, {} elements", values.len()),
            window(values.len())
                .map(|i| ContentRow::plain(format!("[{i}] {}", values[i]), changed_item(i)))
                .collect(),
        ),
        Ok(Decoded::Layout { fields, .. }) => (
            "struct".into(),
            window(fields.len())
                .map(|i| {
                    let f = &fields[i];
                    let value = match &f.text {
                        Some(t) => format!("{t:?}"),
                        None => f
                            .values
                            .iter()
                            .map(|v| v.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    };
                    ContentRow::plain(format!("{} {} = {value}", f.name, f.ty), changed_item(i))
                })
                .collect(),
        ),
        Ok(Decoded::Semaphore { value, waiters }) => (
            "semaphore".into(),
            vec![ContentRow::plain(
                format!("value {value}, waiters {waiters}"),
                !c.changed.is_empty(),
            )],
        ),
        Ok(Decoded::Hex { .. }) | Err(_) => {
            let lines = c.bytes.len().div_ceil(LINE_BYTES);
            (
                format!("{} bytes", c.bytes.len()),
                window(lines).map(|l| hex_row(c, l * LINE_BYTES)).collect(),
            )
        }
    }
}

/// One hex line with per-byte change flags.
fn hex_row(c: &crate::model::shm::Contents, start: usize) -> ContentRow {
    let end = (start + LINE_BYTES).min(c.bytes.len());
    let bytes = &c.bytes[start..end];
    // Changed ranges are sorted: find the first that may touch this line.
    let first = c.changed.partition_point(|r| r.end <= start);
    let is_changed = |at: usize| {
        c.changed[first..]
            .iter()
            .take_while(|r| r.start < end)
            .any(|r| r.contains(&at))
    };
    let mut pieces = vec![(format!("{start:08x} "), false)];
    for (i, b) in bytes.iter().enumerate() {
        pieces.push((" ".into(), false));
        pieces.push((format!("{b:02x}"), is_changed(start + i)));
    }
    pieces.push((" ".repeat(3 * (LINE_BYTES - bytes.len()) + 2), false));
    let ascii: String = bytes
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() || *b == b' ' {
                *b as char
            } else {
                '.'
            }
        })
        .collect();
    pieces.push((ascii, false));
    ContentRow { pieces }
}

/// Draws the panel into `area` (any size, including 0x0).
pub fn render(frame: &mut Frame, area: Rect, panel: &ShmPanel) {
    if area.width < 4 || area.height < 3 {
        return;
    }
    let (list_area, contents_area, matrix_area) = if area.width >= 60 {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Fill(1)]).areas(area);
        let matrix_height = (panel.matrix.len() as u16 + 3).min(right.height / 2);
        let [top, bottom] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(matrix_height)]).areas(right);
        (left, top, bottom)
    } else {
        let [a, b, c] = Layout::vertical([
            Constraint::Percentage(35),
            Constraint::Fill(1),
            Constraint::Percentage(25),
        ])
        .areas(area);
        (a, b, c)
    };
    render_list(frame, list_area, panel);
    render_contents(frame, contents_area, panel);
    render_matrix(frame, matrix_area, panel);
}

fn highlight(panel: &ShmPanel) -> Style {
    if panel.no_color {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    } else {
        Style::default()
            .fg(Color::Black)
            .bg(Color::Yellow)
            .add_modifier(Modifier::BOLD)
    }
}

fn render_list(frame: &mut Frame, area: Rect, panel: &ShmPanel) {
    let inner_height = area.height.saturating_sub(2) as usize;
    // Keep the selection visible.
    let first = panel
        .selected
        .saturating_sub(inner_height.saturating_sub(1));
    let lines: Vec<Line> = panel
        .segments
        .iter()
        .enumerate()
        .skip(first)
        .take(inner_height)
        .map(|(i, s)| {
            let mark = if i == panel.selected { "> " } else { "  " };
            let mappers = match s.mappers.len() {
                0 => "-".to_string(),
                1..=3 => s
                    .mappers
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                n => format!("{n} procs"),
            };
            let text = format!(
                "{mark}{} {} {} {}{}",
                s.name,
                s.kind,
                human_size(s.size),
                mappers,
                if s.deleted { " (deleted)" } else { "" }
            );
            let style = if i == panel.selected {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                Style::default()
            };
            Line::styled(text, style)
        })
        .collect();
    let title = format!(" shared memory ({}) ", panel.segments.len());
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn render_contents(frame: &mut Frame, area: Rect, panel: &ShmPanel) {
    let hl = highlight(panel);
    let mut lines: Vec<Line> = Vec::new();
    if let Some(e) = &panel.error {
        lines.push(Line::styled(
            format!("! {e}"),
            Style::default().add_modifier(Modifier::BOLD),
        ));
    }
    for row in &panel.contents {
        let mut spans = vec![Span::raw(if row.changed() { "* " } else { "  " })];
        spans.extend(row.pieces.iter().map(|(text, changed)| {
            if *changed {
                Span::styled(text.clone(), hl)
            } else {
                Span::raw(text.clone())
            }
        }));
        lines.push(Line::from(spans));
    }
    if lines.is_empty() {
        lines.push(Line::raw("(select a segment)"));
    }
    let title = if panel.contents_title.is_empty() {
        " contents ".to_string()
    } else {
        format!(" {} ", panel.contents_title)
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn render_matrix(frame: &mut Frame, area: Rect, panel: &ShmPanel) {
    let mut header = String::from("pid     ");
    for i in 0..panel.segments.len() {
        header.push_str(&format!("{:>2}", i % 100));
    }
    let mut lines = vec![Line::raw(header)];
    for (pid, marks) in &panel.matrix {
        let mut spans = vec![Span::raw(format!("{pid:<8}"))];
        for (i, m) in marks.iter().enumerate() {
            let text = format!(" {m}");
            spans.push(if i == panel.selected {
                Span::styled(
                    text,
                    Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
                )
            } else {
                Span::raw(text)
            });
        }
        lines.push(Line::from(spans));
    }
    let block = Block::bordered().title(" attach: w rw-mapped, r ro-mapped, f fd only ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// `4096` → `4.0K`, `67108864` → `64.0M`.
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{size}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use crate::model::shm::{
        Attachment, Contents, ListItem, Mapping, Segment, SegmentId, SegmentKind,
    };
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use std::sync::Arc;

    fn segment(name: &str, inode: u64, pids: &[i32]) -> Segment {
        let id = SegmentId {
            dev_major: 0,
            dev_minor: 0x1a,
            inode,
        };
        Segment {
            name: name.into(),
            kind: SegmentKind::Posix,
            inode,
            device: "00:1a".into(),
            size: 4096,
            deleted: false,
            pids: pids.to_vec(),
            id,
            attachments: pids
                .iter()
                .map(|p| Attachment {
                    pid: *p,
                    mappings: vec![Mapping {
                        start: 0,
                        end: 4096,
                        perms: "rw-s".into(),
                        offset: 0,
                    }],
                    fds: vec![],
                })
                .collect(),
            sysv: None,
        }
    }

    fn snapshot() -> ShmSnapshot {
        let segments = vec![
            segment("psm_aaaa0001", 1, &[100, 101]),
            segment("pym-100-xyz", 2, &[100]),
        ];
        let items = vec![
            ListItem::Int { value: 7 },
            ListItem::Str {
                value: "héllo".into(),
            },
        ];
        ShmSnapshot {
            contents: Some(Ok(Contents {
                id: segments[0].id,
                bytes: Arc::new(vec![0; 64]),
                decoded: Ok(Decoded::ShareableList {
                    layout: "3.9+".into(),
                    items,
                }),
                changed: vec![16..24],
                changed_items: vec![1],
            })),
            segments,
            took_us: 5,
        }
    }

    fn draw(w: u16, h: u16, panel: &ShmPanel) -> String {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| render(f, f.area(), panel)).unwrap();
        crate::ui::screen_text(terminal.backend().buffer())
    }

    #[test]
    fn renders_list_contents_and_matrix() {
        let panel = ShmPanel::from_snapshot(&snapshot(), 0, 0, 20);
        assert_eq!(
            panel.matrix,
            vec![(100, vec!['w', 'w']), (101, vec!['w', '.'])]
        );
        let screen = draw(100, 20, &panel);
        assert!(
            screen.contains("> psm_aaaa0001 posix 4.0K 100,101"),
            "{screen}"
        );
        assert!(screen.contains("ShareableList 3.9+, 2 items"), "{screen}");
        assert!(screen.contains("  [0] 7"), "{screen}");
        assert!(screen.contains("* [1] \"héllo\""), "{screen}");
        assert!(screen.contains("100      w w"), "{screen}");
        assert!(screen.contains("101      w ."), "{screen}");
        let narrow = draw(40, 30, &panel);
        assert!(narrow.contains("psm_aaaa0001"), "{narrow}");
    }

    #[test]
    fn hex_rows_mark_changed_bytes() {
        let mut snap = snapshot();
        if let Some(Ok(c)) = &mut snap.contents {
            c.decoded = Ok(Decoded::Hex {
                size: 64,
                hex: String::new(),
            });
            c.changed = vec![17..18];
        }
        let mut panel = ShmPanel::from_snapshot(&snap, 0, 0, 10);
        panel.no_color = true;
        assert_eq!(panel.contents.len(), 4);
        assert!(panel.contents[1].changed() && !panel.contents[0].changed());
        let changed: Vec<&str> = panel.contents[1]
            .pieces
            .iter()
            .filter(|p| p.1)
            .map(|p| p.0.as_str())
            .collect();
        assert_eq!(changed, vec!["00"]);
        let screen = draw(100, 12, &panel);
        assert!(screen.contains("* 00000010  00 00"), "{screen}");
        // Reverse video marks the changed byte without colour.
        let mut terminal = Terminal::new(TestBackend::new(100, 12)).unwrap();
        terminal.draw(|f| render(f, f.area(), &panel)).unwrap();
        let buffer = terminal.backend().buffer();
        let reversed = (0..100).any(|x| {
            (0..12).any(|y| {
                buffer[(x, y)].modifier.contains(Modifier::REVERSED)
                    && buffer[(x, y)].symbol() == "0"
                    && x > 40
            })
        });
        assert!(reversed);
    }

    #[test]
    fn tiny_and_empty_areas_do_not_panic() {
        let panel = ShmPanel::from_snapshot(&snapshot(), 5, 1000, 10);
        for (w, h) in [
            (0, 0),
            (1, 1),
            (3, 2),
            (4, 3),
            (10, 4),
            (20, 5),
            (59, 10),
            (60, 3),
        ] {
            draw(w, h, &panel);
        }
        draw(30, 10, &ShmPanel::default());
        let err = ShmSnapshot {
            contents: Some(Err("the segment is gone".into())),
            ..snapshot()
        };
        let screen = draw(80, 10, &ShmPanel::from_snapshot(&err, 0, 0, 5));
        assert!(screen.contains("! the segment is gone"), "{screen}");
        assert_eq!(human_size(67108864), "64.0M");
    }
}
