//! Cost of one shared-memory refresh (what the watcher thread does each interval):
//! - a 64 MiB segment: discovery + read + auto-decode + change detection (one byte changed
//!   per refresh), and its parts; peer: `cat` of the same file to /dev/null;
//! - 1,000 small (4 KiB) segments mapped by one process: discovery, and discovery + reading
//!   all of them;
//! - decoding a 1,000-item ShareableList (compare with `benches/shm_peer.py`).
//!
//! Run: `cargo bench --bench shm_refresh` (results in docs/PERFORMANCE-shm.md). Every
//! /dev/shm file it creates is removed at the end (also on panic: a drop guard).

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use forkscope::inspect::shm::decode::shareable_list;
use forkscope::inspect::shm::read::read_segment_into;
use forkscope::inspect::shm::watch::{Previous, WatchRequest, changed_ranges, refresh};
use forkscope::inspect::shm::{Scope, discover, find};

/// Files created in /dev/shm and mapped here; unmapped and removed on drop.
struct Mapped {
    names: Vec<String>,
    maps: Vec<(usize, usize)>,
}

impl Mapped {
    fn create(names: Vec<String>, size: usize) -> Mapped {
        let mut maps = Vec::new();
        for name in &names {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(format!("/dev/shm/{name}"))
                .expect("create");
            file.set_len(size as u64).expect("size");
            // Not all zeros: a pattern, so hex/auto work on real bytes.
            let chunk: Vec<u8> = (0..(1 << 16)).map(|i| (i * 7 % 251) as u8).collect();
            let mut at = 0;
            while at < size {
                let n = chunk.len().min(size - at);
                file.write_all_at(&chunk[..n], at as u64).expect("fill");
                at += n;
            }
            // SAFETY: a fresh shared mapping of a file we own; unmapped in drop.
            let addr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            assert_ne!(addr, libc::MAP_FAILED);
            maps.push((addr as usize, size));
        }
        Mapped { names, maps }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        for (addr, size) in &self.maps {
            // SAFETY: mappings made in create.
            unsafe { libc::munmap(*addr as *mut libc::c_void, *size) };
        }
        for name in &self.names {
            let _ = std::fs::remove_file(format!("/dev/shm/{name}"));
        }
    }
}

fn big(c: &mut Criterion) {
    let me = std::process::id() as i32;
    let name = format!("fsbench_{me}_big");
    let mapped = Mapped::create(vec![name.clone()], 64 << 20);
    let segments = discover(&Scope::Pids(vec![me]));
    let seg = find(&segments, &name).expect("found").clone();
    let request = WatchRequest {
        pids: vec![me],
        selected: Some(seg.id),
        format: "auto".parse().expect("format"),
        ..WatchRequest::default()
    };
    let mut previous = Previous::default();
    let base = mapped.maps[0].0 as *mut u8;
    let mut tick = 0usize;
    let mut group = c.benchmark_group("64MiB");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("refresh (discover+read+decode+diff)", |b| {
        b.iter(|| {
            tick = tick.wrapping_add(4099);
            // SAFETY: inside our own 64 MiB mapping.
            unsafe { *base.add(tick % (64 << 20)) ^= 1 };
            let (snapshot, pending) = refresh(&request, &mut previous, 128 << 20);
            drop(snapshot);
            previous.commit(pending);
        })
    });
    let mut buf = Vec::new();
    group.bench_function("read only", |b| {
        b.iter(|| read_segment_into(&seg, 128 << 20, &mut buf).expect("read"))
    });
    let mut other = buf.clone();
    other[40 << 20] ^= 1;
    group.bench_function("change detection only", |b| {
        b.iter(|| changed_ranges(&buf, &other, 4096))
    });
    let path = format!("/dev/shm/{name}");
    group.bench_function("peer: cat FILE > /dev/null", |b| {
        b.iter(|| {
            Command::new("cat")
                .arg(&path)
                .stdout(Stdio::null())
                .status()
                .expect("cat")
        })
    });
    group.finish();
    drop(mapped);
}

fn many(c: &mut Criterion) {
    let me = std::process::id() as i32;
    let names: Vec<String> = (0..1000).map(|i| format!("fsbench_{me}_s{i:04}")).collect();
    let mapped = Mapped::create(names, 4096);
    let mut group = c.benchmark_group("1000 x 4KiB");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("discover", |b| b.iter(|| discover(&Scope::Pids(vec![me]))));
    let mut buf = Vec::new();
    group.bench_function("discover + read all", |b| {
        b.iter(|| {
            let segments = discover(&Scope::Pids(vec![me]));
            let mut total = 0;
            for s in segments.iter().filter(|s| s.name.starts_with("fsbench_")) {
                read_segment_into(s, 1 << 20, &mut buf).expect("read");
                total += buf.len();
            }
            assert!(total >= 1000 * 4096);
        })
    });
    group.finish();
    drop(mapped);
}

fn list(c: &mut Criterion) {
    // 1,000 items: ints, floats and short strings, as CPython lays them out.
    let mut bytes = Vec::new();
    let n = 1000usize;
    let mut bounds = vec![0i64];
    let mut data: Vec<u8> = Vec::new();
    let mut formats = Vec::new();
    let mut codes = Vec::new();
    for i in 0..n {
        let (fmt, slot, code): (&[u8], Vec<u8>, u8) = match i % 3 {
            0 => (b"q", (i as i64).to_le_bytes().to_vec(), 0),
            1 => (b"d", (i as f64).to_le_bytes().to_vec(), 0),
            _ => (b"8s", format!("s{i:06}").into_bytes(), 1),
        };
        let mut slot = slot;
        slot.resize(8, 0);
        data.extend(&slot);
        bounds.push(bounds[bounds.len() - 1] + 8);
        let mut f = fmt.to_vec();
        f.resize(8, 0);
        formats.extend(f);
        codes.push(code);
    }
    bytes.extend((n as i64).to_le_bytes());
    for b in &bounds {
        bytes.extend(b.to_le_bytes());
    }
    bytes.extend(data);
    bytes.extend(formats);
    bytes.extend(codes);
    let mut group = c.benchmark_group("ShareableList");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(2));
    group.bench_function("decode 1000 items", |b| {
        b.iter(|| shareable_list::decode(&bytes).expect("list").items.len())
    });
    group.finish();
}

criterion_group!(benches, big, many, list);
criterion_main!(benches);
