//! The HTTP server under the intake and the health endpoints: hyper's HTTP/1 connection
//! settings plus a connection cap, so slow or idle clients cannot hold the process.
//!
//! * `header_read_timeout` (hyper): the request line and headers must arrive within it — a
//!   client sending one header line every few seconds is cut off. hyper starts this timer
//!   whenever it waits for a request head, so it also ends idle keep-alive connections.
//! * `request_timeout` (tower-http `TimeoutLayer`): the whole request, body included, must be
//!   handled within it — a body trickling one byte every 10 s gets a 408 and the connection
//!   closes.
//! * `max_connections`: a semaphore taken on accept. Past the cap a new connection gets an
//!   immediate `503` problem document with `Retry-After` and is closed, so the cap shows up
//!   as a clear refusal rather than a hang, and file descriptors stay available to the
//!   operator's own PSA and Kubernetes clients.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutLayer;

/// Connection limits of one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest wait for a complete request head (also the idle keep-alive limit).
    pub header_read_timeout: Duration,
    /// Longest time for a whole request, body included.
    pub request_timeout: Duration,
    /// Most open connections; further ones are refused with a 503.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// The answer to a connection over the cap, written before closing it.
fn refusal() -> Vec<u8> {
    let body = serde_json::json!({
        "type": "https://psa-operator.io/problems/too-many-connections",
        "title": "Too many connections",
        "status": 503,
        "detail": "the server holds its maximum of open connections; retry shortly",
        "errors": [],
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves; connections in
/// flight then finish their current request.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusal: Arc<[u8]> = refusal().into();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (mut stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let refusal = refusal.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    stream.write_all(&refusal).await?;
                    stream.shutdown().await
                })
                .await;
            });
            continue;
        };
        // The intake limits failed authentications per client address.
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let header_read_timeout = limits.header_read_timeout;
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    // Requests in flight finish (each connection closes after its current one), within the
    // request deadline: every slot back means every connection is gone.
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.request_timeout, slots.acquire_many(all)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use std::time::Instant;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    const LIMITS: ServerLimits = ServerLimits {
        header_read_timeout: Duration::from_millis(800),
        request_timeout: Duration::from_millis(1500),
        max_connections: 3,
    };

    async fn start() -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new()
            .route("/ping", get(|| async { "pong" }))
            .route("/echo", post(|body: axum::body::Bytes| async move { body }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, LIMITS, async {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    /// Reads until the server closes the connection (or 5 s pass); what it sent and when.
    async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
        let started = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => panic!("connection still open after 5 s"),
            }
        }
        (
            String::from_utf8_lossy(&got).into_owned(),
            started.elapsed(),
        )
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed() {
        let (addr, _stop) = start().await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let (_, after) = until_closed(&mut idle).await;
        assert!(after < Duration::from_secs(3), "{after:?}");
        // After a request, an idle keep-alive connection is closed the same way.
        let mut kept = TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let (text, after) = until_closed(&mut kept).await;
        assert!(text.contains("pong"), "{text}");
        assert!(after < Duration::from_secs(3), "{after:?}");
    }

    #[tokio::test]
    async fn headers_sent_one_line_at_a_time_are_cut_off() {
        let (addr, _stop) = start().await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        slow.write_all(b"GET /ping HTTP/1.1\r\n").await.unwrap();
        let mut closed = false;
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let line = format!("x-slow-{i}: 1\r\n");
            if slow.write_all(line.as_bytes()).await.is_err() {
                closed = true;
                break;
            }
            let mut probe = [0u8; 256];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
            {
                closed = true;
                break;
            }
        }
        assert!(closed, "still open after 6 s of header lines");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_trickling_body_gets_a_408_within_the_request_deadline() {
        let (addr, _stop) = start().await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n")
            .await
            .unwrap();
        let trickle = tokio::spawn(async move {
            for _ in 0..20 {
                if slow.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            slow
        });
        let mut slow = trickle.await.unwrap();
        let (text, _) = until_closed(&mut slow).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_refused_clearly() {
        let (addr, _stop) = start().await;
        let mut held = Vec::new();
        for _ in 0..LIMITS.max_connections {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        let (text, _) = until_closed(&mut extra).await;
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("retry-after: 1") && text.contains("too-many-connections"));
        // Once the held connections go, new ones are served again.
        drop(held);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut ok = TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let (text, _) = until_closed(&mut ok).await;
        assert!(
            text.starts_with("HTTP/1.1 200") && text.contains("pong"),
            "{text}"
        );
    }
}
