//! A pool's supervision policy in the config (`docs/config.md`): `stop_timeout`,
//! `success_codes`, `backoff`, `max_restarts` within `restart_window`, `start_secs`; and the
//! duration values they are written in (seconds, or a string with a unit).

use std::time::Duration;

use toml::Spanned;

use super::raw::{DurationValue, RawPool};
use super::{Checker, ConfigError};
use crate::model::policy::{PoolPolicy, RestartLimit};

/// Largest `max_restarts`.
const MAX_RESTARTS: u32 = 1_000_000;
/// `restart_window` when only `max_restarts` is given.
const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(60);

impl Checker<'_> {
    /// `stop_timeout`, `success_codes`, `backoff`, `max_restarts`/`restart_window`,
    /// `start_secs`.
    pub(super) fn pool_policy(&self, raw: &RawPool) -> Result<PoolPolicy, ConfigError> {
        let defaults = PoolPolicy::default();
        let stop_timeout = raw
            .stop_timeout
            .as_ref()
            .map(|v| self.duration(v, 0.0, "stop_timeout"))
            .transpose()?;
        let success_codes = match &raw.success_codes {
            None => defaults.success_codes,
            Some(codes) => {
                if codes.get_ref().is_empty() {
                    return Err(self.err(
                        codes.span(),
                        "success_codes is empty (list the exit codes that are not failures, e.g. [0, 3])",
                    ));
                }
                let mut parsed = Vec::new();
                for code in codes.get_ref() {
                    match i32::try_from(*code.get_ref()) {
                        Ok(n) if (0..=255).contains(&n) => parsed.push(n),
                        _ => {
                            return Err(self.err(
                                code.span(),
                                format!(
                                    "success_codes: an exit code is 0 to 255, not {}",
                                    code.get_ref()
                                ),
                            ));
                        }
                    }
                }
                parsed
            }
        };
        let mut backoff = defaults.backoff;
        if let Some(raw_backoff) = &raw.backoff {
            let given = raw_backoff.get_ref();
            if let Some(initial) = &given.initial {
                backoff.initial = self.duration(initial, 0.001, "backoff.initial")?;
            }
            if let Some(max) = &given.max {
                backoff.max = self.duration(max, 0.001, "backoff.max")?;
            }
            if backoff.max < backoff.initial {
                let span = given.max.as_ref().map_or(raw_backoff.span(), |m| m.span());
                return Err(self.err(
                    span,
                    format!(
                        "backoff.max ({:?}) is shorter than backoff.initial ({:?})",
                        backoff.max, backoff.initial
                    ),
                ));
            }
        }
        let window = raw
            .restart_window
            .as_ref()
            .map(|w| self.duration(w, 0.001, "restart_window"))
            .transpose()?;
        let restart_limit = match (&raw.max_restarts, window) {
            (None, None) => None,
            (None, Some(_)) => {
                let span = raw.restart_window.as_ref().map_or(0..0, |w| w.span());
                return Err(self.err(span, "restart_window needs max_restarts"));
            }
            (Some(max), window) => match u32::try_from(*max.get_ref()) {
                Ok(n) if n <= MAX_RESTARTS => Some(RestartLimit {
                    max_restarts: n,
                    window: window.unwrap_or(DEFAULT_RESTART_WINDOW),
                }),
                _ => {
                    return Err(self.err(
                        max.span(),
                        format!(
                            "max_restarts must be 0 to {MAX_RESTARTS}, not {}",
                            max.get_ref()
                        ),
                    ));
                }
            },
        };
        let start_secs = raw
            .start_secs
            .as_ref()
            .map(|v| self.duration(v, 0.0, "start_secs"))
            .transpose()?
            .unwrap_or(defaults.start_secs);
        Ok(PoolPolicy {
            stop_timeout,
            success_codes,
            backoff,
            restart_limit,
            start_secs,
        })
    }

    /// A duration key: seconds (a number) or a string with a unit, `min` to 86400 seconds.
    pub(super) fn duration(
        &self,
        value: &Spanned<DurationValue>,
        min: f64,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        match value.get_ref().seconds() {
            Some(v) if v.is_finite() && v >= min && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
            Some(v) => Err(self.err(
                value.span(),
                format!("{key} must be {min} to 86400 seconds, not {v}"),
            )),
            None => Err(self.err(
                value.span(),
                format!(
                    "{key}: not a duration (seconds as a number, or a string like \"100ms\", \"30s\", \"5m\")"
                ),
            )),
        }
    }
}
