//! The `--metrics` HTTP endpoint: `tiny_http` on its own thread serves `GET /metrics` from a
//! snapshot of the fold (copied under the lock, encoded outside it), so a scrape never holds
//! up the engine for longer than that copy.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::ObsState;
use super::metrics::EngineCounters;

/// The Content-Type of the OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Refuses a non-loopback address unless `public`.
pub fn check_addr(addr: SocketAddr, public: bool) -> Result<(), String> {
    if public || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "--metrics {addr}: not a loopback address (127.0.0.1, [::1]); \
             add --metrics-public to serve metrics to other machines"
        ))
    }
}

/// Binds the address (port 0: any free port).
pub fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|err| format!("--metrics {addr}: {err}"))
}

/// The serving thread; dropping it stops serving.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

/// Starts serving on `listener`.
pub fn serve(
    listener: TcpListener,
    state: Arc<Mutex<ObsState>>,
    counters: Box<dyn Fn() -> EngineCounters + Send>,
) -> std::io::Result<MetricsServer> {
    let server = tiny_http::Server::from_listener(listener, None)
        .map(Arc::new)
        .map_err(std::io::Error::other)?;
    let serving = server.clone();
    let thread = std::thread::Builder::new()
        .name("forkscope-metrics".into())
        .spawn(move || {
            for request in serving.incoming_requests() {
                let response = respond(&request, &state, &*counters);
                if let Err(err) = request.respond(response) {
                    tracing::debug!("metrics response not sent: {err}");
                }
            }
        })?;
    Ok(MetricsServer {
        server,
        thread: Some(thread),
    })
}

fn respond(
    request: &tiny_http::Request,
    state: &Mutex<ObsState>,
    counters: &dyn Fn() -> EngineCounters,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let path = request.url().split('?').next().unwrap_or("");
    if *request.method() != tiny_http::Method::Get || path != "/metrics" {
        return tiny_http::Response::from_string("forkscope serves GET /metrics\n")
            .with_status_code(404);
    }
    let fold = super::lock(state).metrics.clone();
    let text = fold.map(|fold| fold.encode(counters()));
    match text {
        Some(Ok(text)) => {
            let mut response = tiny_http::Response::from_string(text);
            if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE) {
                response.add_header(header);
            }
            response
        }
        _ => tiny_http::Response::from_string("no metrics\n").with_status_code(500),
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_without_public() {
        assert!(check_addr("127.0.0.1:0".parse().unwrap(), false).is_ok());
        assert!(check_addr("[::1]:9000".parse().unwrap(), false).is_ok());
        let refused = check_addr("0.0.0.0:9000".parse().unwrap(), false).unwrap_err();
        assert!(refused.contains("--metrics-public"), "{refused}");
        assert!(check_addr("0.0.0.0:9000".parse().unwrap(), true).is_ok());
    }
}
