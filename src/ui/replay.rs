//! Playback of a `--record` file for `forkscope replay`: the same TUI, fed from the file's
//! events (read by `record::read`) at the recorded pace (or faster, slower, paused, one event
//! at a time) instead of the engine.

use std::time::{Duration, Instant};

use crate::model::Event;

/// Controls a person has over playback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    TogglePause,
    Step,
    Faster,
    Slower,
    Quit,
}

/// What the header shows about playback.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayStatus {
    pub paused: bool,
    pub speed: f64,
    pub position: usize,
    pub total: usize,
    pub t: f64,
}

/// The recording and where playback stands in it.
#[derive(Debug)]
pub struct Playback {
    events: Vec<Event>,
    next: usize,
    speed: f64,
    paused: bool,
    /// Playback time `t` was `anchor_t` at `anchor`.
    anchor: Instant,
    anchor_t: f64,
}

/// Fastest and slowest playback.
const SPEEDS: (f64, f64) = (1.0 / 16.0, 256.0);

impl Playback {
    pub fn new(events: Vec<Event>, now: Instant) -> Playback {
        Playback {
            events,
            next: 0,
            speed: 1.0,
            paused: false,
            anchor: now,
            anchor_t: 0.0,
        }
    }

    fn clock(&self, now: Instant) -> f64 {
        if self.paused {
            self.anchor_t
        } else {
            self.anchor_t + now.duration_since(self.anchor).as_secs_f64() * self.speed
        }
    }

    fn re_anchor(&mut self, now: Instant) {
        self.anchor_t = self.clock(now);
        self.anchor = now;
    }

    /// The events whose time has come.
    pub fn due(&mut self, now: Instant) -> Vec<Event> {
        let t = self.clock(now);
        let mut out = Vec::new();
        while let Some(event) = self.events.get(self.next) {
            if event.t > t {
                break;
            }
            out.push(event.clone());
            self.next += 1;
        }
        out
    }

    /// How long until the next event is due (None: paused or finished).
    pub fn next_due_in(&self, now: Instant) -> Option<Duration> {
        if self.paused {
            return None;
        }
        let event = self.events.get(self.next)?;
        let wait = (event.t - self.clock(now)) / self.speed;
        Some(Duration::from_secs_f64(wait.clamp(0.0, 3600.0)))
    }

    /// Applies a control; `Step` returns the one event it releases.
    pub fn control(&mut self, control: Control, now: Instant) -> Option<Event> {
        self.re_anchor(now);
        match control {
            Control::TogglePause => self.paused = !self.paused,
            Control::Faster => self.speed = (self.speed * 2.0).min(SPEEDS.1),
            Control::Slower => self.speed = (self.speed / 2.0).max(SPEEDS.0),
            Control::Step => {
                self.paused = true;
                let event = self.events.get(self.next)?.clone();
                self.next += 1;
                self.anchor_t = self.anchor_t.max(event.t);
                return Some(event);
            }
            Control::Quit => {}
        }
        None
    }

    /// Sets the speed (clamped to 1/16x..256x).
    pub fn set_speed(&mut self, speed: f64, now: Instant) {
        self.re_anchor(now);
        self.speed = speed.clamp(SPEEDS.0, SPEEDS.1);
    }

    pub fn status(&self, now: Instant) -> ReplayStatus {
        ReplayStatus {
            paused: self.paused,
            speed: self.speed,
            position: self.next,
            total: self.events.len(),
            t: self.clock(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventBody;

    fn events() -> Vec<Event> {
        [0.0, 1.0, 2.0]
            .into_iter()
            .map(|t| Event {
                t,
                body: EventBody::Notice {
                    pid: None,
                    level: crate::model::NoticeLevel::Info,
                    message: format!("at {t}"),
                },
            })
            .collect()
    }

    #[test]
    fn plays_at_recorded_pace_and_speed() {
        let start = Instant::now();
        let mut playback = Playback::new(events(), start);
        assert_eq!(playback.due(start).len(), 1);
        assert!(playback.due(start + Duration::from_millis(500)).is_empty());
        assert_eq!(playback.due(start + Duration::from_millis(1000)).len(), 1);
        playback.control(Control::Faster, start + Duration::from_millis(1000));
        // At 2x, t = 2.0 comes 0.5 s later.
        assert_eq!(
            playback.next_due_in(start + Duration::from_millis(1000)),
            Some(Duration::from_millis(500))
        );
        assert_eq!(playback.due(start + Duration::from_millis(1500)).len(), 1);
    }

    #[test]
    fn pause_and_step() {
        let start = Instant::now();
        let mut playback = Playback::new(events(), start);
        playback.control(Control::TogglePause, start);
        assert_eq!(playback.due(start + Duration::from_secs(10)).len(), 1);
        assert!(playback.due(start + Duration::from_secs(20)).is_empty());
        let stepped = playback.control(Control::Step, start + Duration::from_secs(20));
        assert_eq!(stepped.map(|e| e.t), Some(1.0));
        assert_eq!(playback.status(start).position, 2);
    }
}
