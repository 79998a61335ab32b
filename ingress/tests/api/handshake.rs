use crate::helpers::{VERIFY_TOKEN, spawn_app};

#[tokio::test]
async fn subscription_handshake_echoes_the_challenge_only_for_the_right_token() {
    let app = spawn_app("handshake", 2).await;
    let good = app
        .http
        .get(app.url(&format!(
            "/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        )))
        .send()
        .await
        .expect("request");
    assert_eq!(good.status(), 200);
    assert_eq!(good.text().await.expect("body"), "1158201444");

    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=test-verify-token&hub.challenge=1",
        "hub.verify_token=test-verify-token&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        "",
    ] {
        let response = app
            .http
            .get(app.url(&format!("/webhook?{query}")))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 403, "query {query:?}");
    }
    app.finish().await;
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app("probes", 2).await;
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    app.post_signed(&crate::helpers::fixture("meta-docs-text-message.json"))
        .await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"ingress_deliveries_total{outcome="accepted"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ingress_events_total{kind="message"} 1"#),
        "{metrics}"
    );
    app.finish().await;
}
