//! A pool's `log`, `log_max` and `log_keep` (`docs/config.md`): where its workers' lines are
//! kept and how the files rotate.

use super::raw::{RawPool, SizeValue};
use super::{Checker, ConfigError};
use crate::obs::logs::{self, LogSpec};

impl Checker<'_> {
    /// The pool's log, if it has one; relative paths start at the config file's directory.
    pub(super) fn pool_log(&self, raw: &RawPool) -> Result<Option<LogSpec>, ConfigError> {
        let Some(template) = &raw.log else {
            if let Some(span) = raw
                .log_max
                .as_ref()
                .map(|v| v.span())
                .or_else(|| raw.log_keep.as_ref().map(|v| v.span()))
            {
                return Err(self.err(span, "log_max and log_keep need log (the file's path)"));
            }
            return Ok(None);
        };
        let text = template.get_ref();
        if text.trim().is_empty() || text.contains('\0') {
            return Err(self.err(
                template.span(),
                "log is empty (a path like \"logs/{pool}-{worker}.log\")",
            ));
        }
        let mut spec = LogSpec::new(self.base.join(text).to_string_lossy().into_owned());
        if let Some(max) = &raw.log_max {
            let parsed = match max.get_ref() {
                SizeValue::Bytes(n) => u64::try_from(*n).map_err(|_| format!("{n}: negative")),
                SizeValue::Text(t) => logs::parse_size(t),
            };
            spec.max_bytes = match parsed {
                Ok(n) if n >= logs::MIN_MAX_BYTES => n,
                Ok(n) => {
                    return Err(self.err(
                        max.span(),
                        format!("log_max must be at least 1K, not {n} bytes"),
                    ));
                }
                Err(err) => return Err(self.err(max.span(), format!("log_max: {err}"))),
            };
        }
        if let Some(keep) = &raw.log_keep {
            spec.keep = match u32::try_from(*keep.get_ref()) {
                Ok(n) if n <= logs::MAX_KEEP => n,
                _ => {
                    return Err(self.err(
                        keep.span(),
                        format!(
                            "log_keep must be 0 to {}, not {}",
                            logs::MAX_KEEP,
                            keep.get_ref()
                        ),
                    ));
                }
            };
        }
        Ok(Some(spec))
    }
}
