//! One worker log file with size-based rotation (`name.log` -> `name.log.1` ... `.N`), and
//! the RFC 3339 timestamps its lines start with.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A log file that rotates before a line would take it past `max_bytes`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl RotatingFile {
    /// Opens (appends to) `path`, creating its directory.
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
            size,
            max_bytes,
            keep,
        })
    }

    /// Writes one whole line (its newline included); a line longer than `max_bytes` gets a
    /// file to itself.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.out.write_all(line)?;
        self.size += len;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// `.N` is removed, `.k` becomes `.k+1`, the file becomes `.1`, a new file starts.
    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.keep == 0 {
            ignore_missing(fs::remove_file(&self.path))?;
        } else {
            ignore_missing(fs::remove_file(numbered(&self.path, self.keep)))?;
            for k in (1..self.keep).rev() {
                ignore_missing(fs::rename(
                    numbered(&self.path, k),
                    numbered(&self.path, k + 1),
                ))?;
            }
            ignore_missing(fs::rename(&self.path, numbered(&self.path, 1)))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.out = BufWriter::with_capacity(64 * 1024, file);
        self.size = 0;
        Ok(())
    }
}

/// `path.k`
pub fn numbered(path: &Path, k: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Seconds since the Unix epoch as RFC 3339 UTC with milliseconds:
/// `2026-12-02T23:07:59.123Z`.
pub fn rfc3339_millis(unix: f64) -> String {
    let millis = (unix.max(0.0) * 1000.0).round() as i64;
    let (secs, ms) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        assert_eq!(rfc3339_millis(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400.5), "2000-02-29T00:00:00.500Z");
        assert_eq!(
            rfc3339_millis(1_796_252_879.123_4),
            "2026-12-02T23:07:59.123Z"
        );
    }

    #[test]
    fn rotation_keeps_every_line_and_at_most_keep_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/w.log");
        let mut file = RotatingFile::open(&path, 100, 3).unwrap();
        for n in 0..50 {
            file.write_line(format!("line {n:04}\n").as_bytes())
                .unwrap();
        }
        file.flush().unwrap();
        // 10-byte lines, 100-byte files: 5 files' worth, of which the newest 4 are kept.
        let mut kept = String::new();
        for k in (1..=3).rev() {
            kept += &fs::read_to_string(numbered(&path, k)).unwrap();
        }
        kept += &fs::read_to_string(&path).unwrap();
        let expected: String = (10..50).map(|n| format!("line {n:04}\n")).collect();
        assert_eq!(kept, expected);
        assert!(!numbered(&path, 4).exists());
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 4);
    }
}
