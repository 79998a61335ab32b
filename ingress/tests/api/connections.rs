//! What open connections may cost: a cap on how many are open, and a timeout for idle ones.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app_with;

const HEALTH_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: ingress\r\n\r\n";
const METRICS_REQUEST: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: ingress\r\n\r\n";

/// Sends one request on a kept-alive connection and returns the response head and body as
/// text, read until the body announced by Content-Length is complete.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.expect("send request");
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.expect("read response");
        assert!(read > 0, "connection closed before a full response");
        received.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && body.len() >= content_length(head)
        {
            return text;
        }
    }
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("responses carry Content-Length")
}

async fn is_served(stream: &mut TcpStream) -> bool {
    exchange(stream, HEALTH_REQUEST)
        .await
        .starts_with("HTTP/1.1 200")
}

fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

/// Asks on `stream` how many connections ingress counts as open (this one included) until the
/// count is `expected`: closing a socket reaches ingress a moment later.
async fn wait_until_open_connections(stream: &mut TcpStream, expected: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let open = gauge(
            &exchange(stream, METRICS_REQUEST).await,
            "ingress_connections_open",
        );
        if open == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} connections open, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn beyond_the_connection_limit_a_connection_is_answered_503_until_one_closes() {
    let mut app = spawn_app_with("connlimit", 2, &[("INGRESS_MAX_CONNECTIONS", "2")]).await;
    // The helper's pooled client keeps the connection it checked readiness on: let it go.
    app.http = reqwest::Client::new();
    let mut first = TcpStream::connect(app.addr).await.expect("connect");
    wait_until_open_connections(&mut first, 1.0).await;

    let mut second = TcpStream::connect(app.addr).await.expect("connect");
    assert!(is_served(&mut first).await);
    let metrics = exchange(&mut second, METRICS_REQUEST).await;
    assert_eq!(gauge(&metrics, "ingress_connections_open"), 2.0);

    // Past the limit: 503 at once, as for deliveries past the in-flight limit.
    let mut third = TcpStream::connect(app.addr).await.expect("connect");
    third.write_all(HEALTH_REQUEST).await.expect("send");
    let mut refusal = String::new();
    tokio::time::timeout(Duration::from_secs(2), third.read_to_string(&mut refusal))
        .await
        .expect("a connection past the limit is answered at once")
        .expect("read the refusal to its end");
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal}");
    let (head, body) = refusal.split_once("\r\n\r\n").expect("a whole response");
    assert_eq!(body, "too many connections open\n");
    assert_eq!(content_length(head), body.len(), "{refusal}");

    drop(first);
    wait_until_open_connections(&mut second, 1.0).await;
    let mut fourth = TcpStream::connect(app.addr).await.expect("connect");
    assert!(is_served(&mut fourth).await);
    let metrics = exchange(&mut second, METRICS_REQUEST).await;
    assert_eq!(gauge(&metrics, "ingress_connections_refused_total"), 1.0);
    assert_eq!(gauge(&metrics, "ingress_connections_open"), 2.0);
    app.finish().await;
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_after_the_idle_timeout() {
    let mut app = spawn_app_with(
        "connidle",
        2,
        &[
            ("INGRESS_PUBLISH_TIMEOUT_MS", "200"),
            ("INGRESS_IDLE_TIMEOUT_MS", "600"),
        ],
    )
    .await;
    app.http = reqwest::Client::new();

    let mut kept_alive = TcpStream::connect(app.addr).await.expect("connect");
    assert!(is_served(&mut kept_alive).await);
    let mut half_sent = TcpStream::connect(app.addr).await.expect("connect");
    half_sent
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: ingress\r\nContent-Le")
        .await
        .expect("send");

    let last_activity = std::time::Instant::now();

    for (name, stream) in [("idle", &mut kept_alive), ("half-sent", &mut half_sent)] {
        let mut rest = Vec::new();
        // Closed by ingress: end of stream or a reset, both end `read_to_end`.
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| panic!("the {name} connection was still open after 5 s"));
        assert!(
            last_activity.elapsed() >= Duration::from_millis(500),
            "the {name} connection was closed before the idle timeout"
        );
    }
    let mut fresh = TcpStream::connect(app.addr).await.expect("connect");
    let metrics = exchange(&mut fresh, METRICS_REQUEST).await;
    assert_eq!(
        gauge(&metrics, "ingress_connections_open"),
        1.0,
        "only the connection asking is still open"
    );
    app.finish().await;
}
