#![forbid(unsafe_code)]
//! Ingress: HTTP only. Verify, authenticate, split, publish, ack. It never talks to Redis and
//! holds no business logic; the 200 it returns means every event of the delivery is confirmed
//! by the broker.

pub mod broker_wal;
pub mod connections;
pub mod host_watch;
pub mod metrics;
pub mod signature;
pub mod split;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use futures::future::join_all;
use lapin::types::FieldTable;
use secrecy::ExposeSecret;
use serde::Deserialize;
use shared::amqp::{Publisher, PublisherOptions, Topology};
use shared::config::IngressConfig;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tracing::{info, info_span, warn};

use crate::connections::BoundedListener;
use crate::metrics::{KindLabel, Metrics, ReasonLabel};

/// WhatsApp sends up to 3 MB; anything over this is refused with 413 before reading on.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
}

struct AppState {
    config: IngressConfig,
    publisher: Publisher,
    metrics: Metrics,
    in_flight: tokio::sync::Semaphore,
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight deliveries finish
/// their publishes, and closes the broker connection.
pub async fn run(
    config: IngressConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), IngressError> {
    let topology = Topology::new(&config.common.namespace, config.common.partitions);
    let metrics = Metrics::new();
    let publisher = Publisher::start(PublisherOptions {
        amqp_url: config.common.amqp_url.clone(),
        topology,
        channels: config.publish_channels,
        publish_timeout: config.publish_timeout,
        connection_name: format!("ingress:{}", config.common.namespace),
        on_confirmed: Some(metrics.stage_observer()),
    });
    info!(message = "Ingress listening.", addr = %listener.local_addr()?);
    let listener = BoundedListener::new(
        listener,
        config.max_connections,
        config.idle_timeout,
        metrics.connections_open.clone(),
        metrics.connections_refused.clone(),
    );
    let state = Arc::new(AppState {
        in_flight: tokio::sync::Semaphore::new(config.max_in_flight),
        config,
        publisher: publisher.clone(),
        metrics,
    });
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    publisher.close().await;
    info!(message = "Ingress stopped.");
    Ok(())
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/webhook", get(verify_subscription).post(receive_delivery))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness))
        .route("/metrics", get(render_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[derive(Deserialize)]
struct Subscription {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn verify_subscription(
    State(state): State<Arc<AppState>>,
    Query(query): Query<Subscription>,
) -> Response {
    let expected = state.config.verify_token.expose_secret().as_bytes();
    let token_matches = query
        .verify_token
        .as_deref()
        .is_some_and(|token| bool::from(token.as_bytes().ct_eq(expected)));
    match (query.mode.as_deref(), token_matches, query.challenge) {
        (Some("subscribe"), true, Some(challenge)) => {
            info!(message = "Webhook subscription verified.");
            (StatusCode::OK, challenge).into_response()
        }
        _ => {
            warn!(message = "Webhook subscription refused.");
            (StatusCode::FORBIDDEN, "verification failed").into_response()
        }
    }
}

async fn receive_delivery(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    // Each waiting delivery holds its body and its events until the broker confirms. When the
    // broker stalls, refusing at once (WhatsApp redelivers a 503) keeps memory bounded.
    let Ok(_in_flight) = state.in_flight.try_acquire() else {
        state.metrics.delivery("overloaded");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many deliveries in flight",
        )
            .into_response();
    };
    let signature_header = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
    if let Err(error) = signature::verify(
        state.config.app_secret.expose_secret().as_bytes(),
        signature_header,
        &body,
    ) {
        state.metrics.delivery("unauthorized");
        warn!(message = "Webhook delivery refused.", %error);
        return (StatusCode::UNAUTHORIZED, error.to_string()).into_response();
    }
    // Not entered around the handler (no `.instrument`): entering and leaving a span at every
    // poll cost about 4% of ingress's instructions per delivery, and nothing needs it current.
    // Its children and log lines name it as their parent instead.
    let span = info_span!(
        "webhook.delivery",
        bytes = body.len(),
        events = tracing::field::Empty
    );
    let response = handle_authenticated(&state, &body, &span).await;
    state
        .metrics
        .delivery_seconds
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn handle_authenticated(state: &AppState, body: &Bytes, span: &tracing::Span) -> Response {
    let received_at = Utc::now();
    let split = match split::split_delivery(body, received_at) {
        Ok(split) => split,
        Err(error) => {
            // Signed by WhatsApp yet unreadable: keep it for inspection rather than make
            // WhatsApp retry a payload that will never parse.
            warn!(parent: span, message = "Signed delivery could not be parsed; keeping it raw.", %error);
            return keep_unparsed(state, body, &error.to_string(), span).await;
        }
    };
    span.record("events", split.events.len());
    for reason in &split.ignored {
        state
            .metrics
            .ignored
            .get_or_create(&ReasonLabel {
                reason: reason.clone(),
            })
            .inc();
    }

    let publishes = split.events.iter().map(|event| {
        // A child of the delivery's span; it closes when the confirm is in, so its duration is
        // the broker's.
        let publish_span = info_span!(
            parent: span,
            "publish",
            kind = event.kind.as_str(),
            // A `&str`, not `%`: the trace layer stores it as is, without formatting.
            customer = shared::telemetry::pseudonym(&event.customer).as_str(),
        );
        async move {
            let confirmed = state
                .publisher
                .publish_envelope_traced(event, &publish_span)
                .await;
            drop(publish_span);
            confirmed
        }
    });
    let results = join_all(publishes).await;
    if let Some(error) = results.iter().find_map(|r| r.as_ref().err()) {
        state.metrics.delivery("unavailable");
        warn!(parent: span, message = "Publish was not confirmed; asking WhatsApp to redeliver.", %error);
        return (StatusCode::SERVICE_UNAVAILABLE, "broker unavailable").into_response();
    }
    for event in &split.events {
        state
            .metrics
            .events
            .get_or_create(&KindLabel {
                kind: event.kind.as_str(),
            })
            .inc();
    }

    if !split.unreadable.is_empty() {
        let reasons = split.unreadable.join("; ");
        warn!(parent: span, message = "Some updates could not be read; keeping the delivery raw.", %reasons);
        state
            .metrics
            .unreadable
            .inc_by(split.unreadable.len() as u64);
        return keep_unparsed(state, body, &reasons, span).await;
    }
    state.metrics.delivery(if split.events.is_empty() {
        "ignored"
    } else {
        "accepted"
    });
    StatusCode::OK.into_response()
}

async fn keep_unparsed(
    state: &AppState,
    body: &Bytes,
    reason: &str,
    span: &tracing::Span,
) -> Response {
    let topology = state.publisher.topology();
    let mut headers = FieldTable::default();
    headers.insert(
        "x-unparsed-reason".into(),
        lapin::types::AMQPValue::LongString(reason.as_bytes().to_vec().into()),
    );
    // Publishing through the default exchange straight to the queue.
    match state
        .publisher
        .publish("", &topology.unparsed_queue(), body, headers, None)
        .await
    {
        Ok(()) => {
            state.metrics.delivery("unparsed");
            StatusCode::OK.into_response()
        }
        Err(error) => {
            state.metrics.delivery("unavailable");
            warn!(parent: span, message = "Could not keep an unparsed delivery.", %error);
            (StatusCode::SERVICE_UNAVAILABLE, "broker unavailable").into_response()
        }
    }
}

async fn readiness(State(state): State<Arc<AppState>>) -> Response {
    if state.publisher.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "broker connection not ready",
        )
            .into_response()
    }
}

async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// How long a draining ingress may take before the process exits anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
