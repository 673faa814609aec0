//! The service itself: the tokio accept loop, one task per connection (credentials checked
//! first), request dispatch, subscriptions and barrier waits. Idle connections are parked
//! tasks; a request line is read into a bounded buffer and a longer one is skipped unread.

use super::line_reader::{Line, next_line};
use crate::model::NoticeLevel;
use std::os::unix::net::UnixListener as StdListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{Notify, mpsc, oneshot};

use super::barrier::{Barriers, Outcome, Party};
use super::hub::{Hub, SharedEvent};
use super::protocol::{self, Op, ProtoError, reply_err, reply_ok};
use super::status::StatusFold;
use super::watch::{self, Watched};
use crate::model::{EventBody, ExitStatus};
use crate::supervise::ActionTx;
use crate::supervise::channel::EventTx;

#[path = "server_status.rs"]
mod status_doc;
use status_doc::{publish_watched, status, watched_now};

/// Connections served at once; more are told so and closed.
pub const MAX_CLIENTS: usize = 4096;
/// Reply lines queued for one connection before its requests wait.
const OUT_QUEUE: usize = 1024;
/// Watched objects kept per session.
const MAX_WATCHES: usize = 1024;
/// How often watched objects are read for `watched` events.
const WATCH_PERIOD: Duration = Duration::from_millis(200);

/// What the service was started with.
pub struct Context {
    pub hub: Arc<Hub>,
    pub actions: ActionTx,
    pub emitter: EventTx,
    pub engine_pid: i32,
    pub session_pid: i32,
    pub title: String,
    pub socket: PathBuf,
}

#[derive(Default)]
struct Coord {
    fold: StatusFold,
    barriers: Barriers,
    watches: Vec<Watched>,
    /// The last `watched` event emitted per name: (pid, value, error).
    published: std::collections::HashMap<String, (i32, Value, Option<String>)>,
    /// Each connection's party lineage, read from `/proc` at its first barrier wait.
    lineages: std::collections::HashMap<u64, Vec<i32>>,
}

struct Shared {
    context: Context,
    coord: Mutex<Coord>,
    uid: u32,
    clients: AtomicUsize,
    next_conn: AtomicU64,
    /// Turns true at the session's end: connections stop reading and flush what they owe.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Coord> {
        self.coord.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit_all(&self, events: Vec<EventBody>) {
        for body in events {
            self.context.emitter.emit(body);
        }
    }

    fn notice(&self, level: NoticeLevel, message: String) {
        self.context.emitter.emit(EventBody::notice(level, message));
    }

    fn on_lifecycle(&self, event: &SharedEvent) {
        let mut coord = self.lock();
        coord.fold.apply(&event.event);
        let mut events = Vec::new();
        match &event.event.body {
            EventBody::Exit { pid, status, .. } => {
                events.extend(coord.barriers.process_exited(*pid, &describe(*status)));
                let fold = std::mem::take(&mut coord.fold);
                events.extend(coord.barriers.check_arrivals(&fold));
                coord.fold = fold;
                coord.watches.retain(|w| w.pid != *pid);
            }
            EventBody::WorkerFailed { .. } | EventBody::SpawnFailed { .. } => {
                let fold = std::mem::take(&mut coord.fold);
                events.extend(coord.barriers.check_arrivals(&fold));
                coord.fold = fold;
            }
            _ => {}
        }
        self.emit_all(events);
    }
}

fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Exited(code) => format!("exit code {code}"),
        ExitStatus::Signaled { signal, .. } => {
            format!("killed by {}", crate::model::signals::signal_name(signal))
        }
        ExitStatus::Unknown => "exit status unknown".into(),
    }
}

/// Runs the service until `shutdown` (the session's end).
pub fn run(
    listener: StdListener,
    context: Context,
    mut lifecycle: mpsc::UnboundedReceiver<Arc<SharedEvent>>,
    shutdown: Arc<Notify>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("control socket: no runtime: {err}");
            return;
        }
    };
    let shared = Arc::new(Shared {
        context,
        coord: Mutex::new(Coord::default()),
        uid: rustix::process::getuid().as_raw(),
        clients: AtomicUsize::new(0),
        next_conn: AtomicU64::new(1),
        closing: tokio::sync::watch::Sender::new(false),
    });
    runtime.block_on(async move {
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!("control socket: {err}");
                return;
            }
        };
        let mut watch_ticks = tokio::time::interval(WATCH_PERIOD);
        watch_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.notified() => {
                    flush_before_closing(&shared).await;
                    break;
                }
                _ = watch_ticks.tick() => publish_watched(&shared),
                Some(event) = lifecycle.recv() => shared.on_lifecycle(&event),
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(connection(stream, shared.clone()));
                    }
                    Err(err) => {
                        // Out of fds, most likely: let connections close before retrying.
                        tracing::warn!("control socket accept: {err}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
            }
        }
    });
}

/// At the session's end: subscriptions get what is queued for them (the `end` included) and
/// every connection flushes its replies before the runtime goes, within `CLOSING_GRACE`.
async fn flush_before_closing(shared: &Shared) {
    shared.context.hub.close();
    shared.closing.send_replace(true);
    let deadline = tokio::time::Instant::now() + CLOSING_GRACE;
    while shared.clients.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How long the end of a session waits for connections to flush.
const CLOSING_GRACE: Duration = Duration::from_secs(2);

/// Decrements the client count when a connection ends.
struct ClientSlot<'a>(&'a AtomicUsize);

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(stream: UnixStream, shared: Arc<Shared>) {
    let conn = shared.next_conn.fetch_add(1, Ordering::SeqCst);
    let cred = stream.peer_cred();
    let (read, mut write) = stream.into_split();
    let peer_pid = match &cred {
        Ok(cred) if cred.uid() == shared.uid => cred.pid().unwrap_or(0),
        other => {
            let who = other.as_ref().map_or("unknown".to_string(), |c| {
                format!("uid {} (pid {:?})", c.uid(), c.pid())
            });
            let line = reply_err(
                &Value::Null,
                "refused",
                &format!("refused: {who} is not the owner of this forkscope"),
            );
            let _ = write.write_all(line.as_bytes()).await;
            shared.notice(
                NoticeLevel::Warning,
                format!("control socket: refused a client of {who}"),
            );
            return;
        }
    };
    let _slot = ClientSlot(&shared.clients);
    if shared.clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
        let line = reply_err(&Value::Null, "busy", "too many clients");
        let _ = write.write_all(line.as_bytes()).await;
        return;
    }
    let (out, mut out_rx) = mpsc::channel::<String>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(line) = out_rx.recv().await {
            if write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut tasks = Vec::new();
    let peer = Peer {
        conn,
        pid: peer_pid,
    };
    let mut closing = shared.closing.subscribe();
    loop {
        let next = tokio::select! {
            next = next_line(&mut reader) => next,
            _ = closing.wait_for(|closing| *closing) => break,
        };
        let Ok(Some(line)) = next else { break };
        let sent = match line {
            Line::TooLong => {
                let err = ProtoError::TooLong;
                out.send(reply_err(&Value::Null, err.code(), &err.to_string()))
                    .await
            }
            Line::Complete(bytes) => {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                handle(&shared, peer, &bytes, &out, &mut tasks).await
            }
        };
        if sent.is_err() {
            break;
        }
    }
    let events = {
        let mut coord = shared.lock();
        coord.lineages.remove(&conn);
        coord.barriers.connection_closed(conn)
    };
    shared.emit_all(events);
    if *closing.borrow() {
        // Subscriptions end once their queues are drained (the hub is closed); barrier
        // waits and the like are cut at the grace period.
        let grace = tokio::time::Instant::now() + CLOSING_GRACE;
        for task in &mut tasks {
            let _ = tokio::time::timeout_at(grace, task).await;
        }
    }
    for task in &tasks {
        task.abort();
    }
    drop(out);
    let _ = writer.await;
}

#[derive(Clone, Copy)]
struct Peer {
    conn: u64,
    pid: i32,
}

type Sent = Result<(), mpsc::error::SendError<String>>;

async fn handle(
    shared: &Arc<Shared>,
    peer: Peer,
    bytes: &[u8],
    out: &mpsc::Sender<String>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Sent {
    let (id, op) = protocol::decode(bytes);
    let op = match op {
        Ok(op) => op,
        Err(err) => return out.send(reply_err(&id, err.code(), &err.to_string())).await,
    };
    let reply = match op {
        Op::Hello => Ok(hello(shared, peer)),
        Op::Status => Ok(status(shared)),
        Op::Inspect => {
            let root = shared.context.engine_pid;
            match tokio::task::spawn_blocking(move || crate::inspect::snapshot::take(root)).await {
                Ok(Ok(snapshot)) => {
                    let mut doc = serde_json::to_value(snapshot).unwrap_or(Value::Null);
                    doc["watched"] = serde_json::to_value(watched_now(shared)).unwrap_or_default();
                    Ok(doc)
                }
                Ok(Err(err)) => Err(("inspect", err.to_string())),
                Err(err) => Err(("inspect", err.to_string())),
            }
        }
        Op::Action { action } => {
            if shared.context.actions.send(action) {
                Ok(json!({"queued": true}))
            } else {
                Err(("ended", "the session has ended".to_string()))
            }
        }
        Op::Subscribe { from_start } => {
            let subscription = shared.context.hub.subscribe(from_start);
            let backlog = subscription.backlog.len();
            out.send(reply_ok(
                &id,
                json!({"subscribed": true, "backlog": backlog}),
            ))
            .await?;
            tasks.push(tokio::spawn(forward(
                shared.clone(),
                id,
                subscription,
                out.clone(),
            )));
            return Ok(());
        }
        Op::BarrierWait {
            name,
            parties,
            timeout,
            pool,
            worker,
        } => {
            return barrier_wait(
                shared,
                peer,
                id,
                (name, parties, timeout, pool, worker),
                out,
                tasks,
            )
            .await;
        }
        Op::BarrierAbort { name } => {
            let result = shared
                .lock()
                .barriers
                .abort(&name, &format!("pid {}", peer.pid));
            result
                .map(|events| {
                    shared.emit_all(events);
                    json!({"aborted": name})
                })
                .map_err(|e| ("no_barrier", e))
        }
        Op::BarrierReset { name } => {
            let result = shared.lock().barriers.reset(&name);
            result
                .map(|events| {
                    shared.emit_all(events);
                    json!({"reset": name})
                })
                .map_err(|e| ("no_barrier", e))
        }
        Op::BarrierStatus { name } => {
            Ok(serde_json::to_value(shared.lock().barriers.status(&name)).unwrap_or(Value::Null))
        }
        Op::Mark {
            label,
            pool,
            worker,
        } => {
            shared.context.emitter.emit(EventBody::Mark {
                pid: Some(peer.pid),
                label,
                pool,
                worker,
            });
            Ok(json!({"marked": true}))
        }
        Op::Watch(spec) => {
            let mut coord = shared.lock();
            coord.watches.retain(|w| w.spec.name != spec.name);
            if coord.watches.len() >= MAX_WATCHES {
                Err(("too_many", format!("at most {MAX_WATCHES} watches")))
            } else {
                coord.watches.push(Watched {
                    pid: peer.pid,
                    spec,
                    value: Value::Null,
                    error: None,
                });
                Ok(json!({"watching": true}))
            }
        }
    };
    let line = match reply {
        Ok(result) => reply_ok(&id, result),
        Err((code, message)) => reply_err(&id, code, &message),
    };
    out.send(line).await
}

fn hello(shared: &Shared, peer: Peer) -> Value {
    let context = &shared.context;
    json!({
        "protocol": protocol::PROTOCOL_VERSION,
        "forkscope": env!("CARGO_PKG_VERSION"),
        "session_pid": context.session_pid,
        "engine_pid": context.engine_pid,
        "title": context.title,
        "socket": context.socket,
        "your_pid": peer.pid,
    })
}

/// Streams a subscription's events to the connection; tells the client if it was cut off.
async fn forward(
    shared: Arc<Shared>,
    id: Value,
    mut subscription: super::hub::Subscription,
    out: mpsc::Sender<String>,
) {
    for event in std::mem::take(&mut subscription.backlog) {
        if out
            .send(protocol::stream_line(&id, event.json()))
            .await
            .is_err()
        {
            return;
        }
    }
    while let Some(event) = subscription.live.recv().await {
        subscription
            .queued_bytes
            .fetch_sub(event.weight(), Ordering::SeqCst);
        if out
            .send(protocol::stream_line(&id, event.json()))
            .await
            .is_err()
        {
            return;
        }
    }
    if subscription.cut_off.load(Ordering::SeqCst) {
        let message = format!(
            "subscription cut off: the client fell {} events behind",
            super::hub::SUBSCRIBER_QUEUE
        );
        shared.notice(NoticeLevel::Warning, format!("control socket: {message}"));
        let _ = out.send(reply_err(&id, "too_slow", &message)).await;
    }
}

/// The party's pid and its ancestors up to (not including) the engine.
fn lineage(pid: i32, engine_pid: i32) -> Vec<i32> {
    let mut chain = vec![pid];
    let mut current = pid;
    for _ in 0..64 {
        let Ok(stat) = crate::inspect::proc::read_stat(current) else {
            break;
        };
        if stat.ppid <= 1 || stat.ppid == engine_pid {
            break;
        }
        chain.push(stat.ppid);
        current = stat.ppid;
    }
    chain
}

type WaitArgs = (String, u32, Option<f64>, Option<String>, Option<u32>);

async fn barrier_wait(
    shared: &Arc<Shared>,
    peer: Peer,
    id: Value,
    (name, parties, timeout, pool, worker): WaitArgs,
    out: &mpsc::Sender<String>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Sent {
    let cached = shared.lock().lineages.get(&peer.conn).cloned();
    let lineage = match cached {
        Some(lineage) => lineage,
        None => {
            let found = lineage(peer.pid, shared.context.engine_pid);
            shared.lock().lineages.insert(peer.conn, found.clone());
            found
        }
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    let arrived = {
        let mut coord = shared.lock();
        let (pool, worker) = match (pool, worker) {
            (Some(pool), Some(worker)) => (Some(pool), Some(worker)),
            _ => lineage
                .iter()
                .find_map(|pid| coord.fold.worker_of(*pid))
                .map(|(p, w)| (Some(p.to_string()), Some(w)))
                .unwrap_or((None, None)),
        };
        let party = Party {
            conn: peer.conn,
            pid: peer.pid,
            pool,
            worker,
            lineage,
        };
        let fold = std::mem::take(&mut coord.fold);
        let arrived = coord
            .barriers
            .arrive(&name, parties, party, reply_tx, &fold);
        coord.fold = fold;
        arrived
    };
    let waiter_id = match arrived {
        Ok((waiter_id, events)) => {
            shared.emit_all(events);
            waiter_id
        }
        Err(message) => return out.send(reply_err(&id, "bad_barrier", &message)).await,
    };
    if let Some(seconds) = timeout.filter(|s| s.is_finite() && *s >= 0.0) {
        let shared = shared.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(seconds.min(1e9))).await;
            let events = shared.lock().barriers.timed_out(&name, waiter_id, seconds);
            shared.emit_all(events);
        }));
    }
    let out = out.clone();
    tasks.push(tokio::spawn(async move {
        let line = match reply_rx.await {
            Ok(Outcome::Passed { generation, index }) => {
                reply_ok(&id, json!({"generation": generation, "index": index}))
            }
            Ok(Outcome::Broken { reason }) => {
                reply_err(&id, "broken", &format!("barrier {name:?} broken: {reason}"))
            }
            Err(_) => reply_err(&id, "broken", "the service ended"),
        };
        let _ = out.send(line).await;
    }));
    Ok(())
}
