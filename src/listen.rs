//! `lifeboat run --listen ADDR`: the runner's metrics (`/metrics`, in
//! Prometheus's text exposition format 0.0.4) and health (`/healthz`) over
//! HTTP. The values are the engine's (`runmode::metrics`); this is only the
//! socket: a minimal HTTP/1.1 server that answers GET, one response per
//! connection, with the request's size and the time to send it bounded.
//!
//! It binds before the runner starts (a bad address or a port in use stops
//! the command before any work) and ends with the runner.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use lifeboat_engine::runmode::metrics::{Family, Kind, RunMetrics};
use lifeboat_engine::state::SharedStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most a request may send (its line and headers).
const MAX_REQUEST: usize = 8 * 1024;
/// How long a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client has to take the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait for their turn (bounds the cost
/// of scrapers gone wild).
const CONNECTIONS: usize = 16;

/// A bound listener with what it serves.
pub struct Serve {
    pub listener: TcpListener,
    pub metrics: Arc<RunMetrics>,
}

/// Binds `addr`, or says why it cannot.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--listen)"))
}

/// Serves until the returned task is aborted. `stop` raised means the
/// runner drains: `/healthz` says so.
pub fn spawn(
    serve: Serve,
    store: SharedStore,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let turns = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(turn) = turns.clone().acquire_owned().await else {
                return;
            };
            let Ok((conn, _)) = serve.listener.accept().await else {
                // Out of descriptors, say: not a busy loop meanwhile.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let (metrics, store, stop) = (serve.metrics.clone(), store.clone(), stop.clone());
            tokio::spawn(async move {
                answer(conn, metrics, store, stop).await;
                drop(turn);
            });
        }
    })
}

/// One connection: reads the request, writes one response, closes.
async fn answer(
    mut conn: TcpStream,
    metrics: Arc<RunMetrics>,
    store: SharedStore,
    stop: Arc<AtomicBool>,
) {
    let response = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut conn)).await {
        Err(_) => reply(408, "text/plain", "request timeout\n".into()),
        Ok(Err(status)) => reply(status, "text/plain", format!("{}\n", reason(status))),
        Ok(Ok(head)) => route(&head, metrics, store, &stop).await,
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        let _ = conn.write_all(&response).await;
        let _ = conn.shutdown().await;
    })
    .await;
}

/// The request line and headers, up to the blank line.
async fn read_head(conn: &mut TcpStream) -> Result<String, u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return String::from_utf8(buf).map_err(|_| 400);
        }
        if buf.len() > MAX_REQUEST {
            return Err(431);
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(400),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn route(
    head: &str,
    metrics: Arc<RunMetrics>,
    store: SharedStore,
    stop: &AtomicBool,
) -> Vec<u8> {
    let mut parts = head.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" {
        return reply(405, "text/plain", "only GET is served\n".into());
    }
    match path {
        "/metrics" => {
            // The state is read under its (blocking) lock: off the runtime.
            let text = tokio::task::spawn_blocking(move || exposition(&metrics.families(&store)))
                .await
                .unwrap_or_default();
            reply(200, "text/plain; version=0.0.4; charset=utf-8", text)
        }
        "/healthz" => {
            let h = metrics.health(stop.load(Ordering::SeqCst));
            let status = if h.ok { 200 } else { 503 };
            reply(
                status,
                "text/plain; charset=utf-8",
                format!("{}\n", h.reason),
            )
        }
        _ => reply(
            404,
            "text/plain",
            "not found: /metrics and /healthz are served\n".into(),
        ),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn reply(status: u16, content_type: &str, body: String) -> Vec<u8> {
    let allow = if status == 405 { "Allow: GET\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )
    .into_bytes()
}

/// The families in the text exposition format: `# HELP`, `# TYPE`, then
/// one `name{label="value"} value` line per sample.
pub fn exposition(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = f.help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {} {help}", f.name);
        let _ = writeln!(out, "# TYPE {} {kind}", f.name);
        for s in &f.samples {
            out.push_str(f.name);
            if !s.labels.is_empty() {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| {
                        let v = v
                            .replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n");
                        format!("{k}=\"{v}\"")
                    })
                    .collect();
                let _ = write!(out, "{{{}}}", labels.join(","));
            }
            let _ = writeln!(out, " {}", s.value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_engine::runmode::metrics::Sample;

    #[test]
    fn families_are_written_in_the_text_format_with_escaped_labels() {
        let f = Family {
            name: "lifeboat_backups_total",
            help: "Runs.",
            kind: Kind::Counter,
            samples: vec![Sample {
                labels: vec![("policy", "we\"b\\1".into()), ("status", "success".into())],
                value: 3.0,
            }],
        };
        assert_eq!(
            exposition(&[f]),
            "# HELP lifeboat_backups_total Runs.\n# TYPE lifeboat_backups_total counter\n\
             lifeboat_backups_total{policy=\"we\\\"b\\\\1\",status=\"success\"} 3\n"
        );
    }

    #[test]
    fn a_response_says_its_length_and_closes() {
        let r = String::from_utf8(reply(404, "text/plain", "no\n".into())).unwrap();
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
        assert!(r.contains("Content-Length: 3\r\n") && r.contains("Connection: close\r\n"));
        assert!(r.ends_with("\r\n\r\nno\n"));
    }
}
