//! A full broker restart (`rabbitmqctl stop_app` / `start_app`). Kept in its own test binary:
//! cargo runs test binaries one after another, so no other test shares the broker meanwhile.

use std::process::Command;
use std::time::{Duration, Instant};

use shared::config::{Env, IngressConfig};

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .status()
        .expect("rabbitmqctl must be installed where RabbitMQ runs");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

/// Waits until every queue of `namespace` reports `running` again after the restart.
///
/// Deleting a quorum queue whose at-least-once dead-letter worker is still starting crashes
/// that worker (RabbitMQ 3.10); a few such crashes at once exhaust the node's restart budget
/// for quorum queues, and every quorum queue on the broker goes down, failing whichever test
/// binary runs next.
fn wait_until_queues_run(namespace: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = Command::new("rabbitmqctl")
            .args(["list_queues", "--silent", "name", "state"])
            .output()
            .expect("rabbitmqctl list_queues");
        let listing = String::from_utf8_lossy(&output.stdout);
        let states: Vec<&str> = listing
            .lines()
            .filter(|line| line.starts_with(namespace))
            .filter_map(|line| line.split_whitespace().nth(1))
            .collect();
        if output.status.success()
            && !states.is_empty()
            && states.iter().all(|state| *state == "running")
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queues of {namespace} not running after the restart: {listing}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A quorum queue can be declared and deleted: the broker this test restarted is fully back
/// for the tests that follow.
async fn assert_quorum_queues_work(connection: &lapin::Connection, namespace: &str) {
    use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
    use lapin::types::{AMQPValue, FieldTable};
    let probe = format!("{namespace}probe");
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let channel = connection.create_channel().await.expect("channel");
    channel
        .queue_declare(
            probe.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .expect("the broker declares quorum queues again after the restart");
    channel
        .queue_delete(probe.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("probe queue deleted");
}

#[tokio::test]
async fn answers_503_while_the_broker_is_down_and_recovers_when_it_is_back() {
    let namespace = format!("test.ingress.restart.{}.", std::process::id());
    let env = Env::from_pairs([
        ("WHATSAPP_APP_SECRET", "s"),
        ("WHATSAPP_VERIFY_TOKEN", "t"),
        ("PARTITIONS", "2"),
        ("FLEET_NAMESPACE", namespace.as_str()),
        ("INGRESS_PUBLISH_TIMEOUT_MS", "1000"),
    ]);
    let config = IngressConfig::from_env(&env).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ingress::run(config, listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"555"},"contacts":[{"profile":{"name":"A"},"wa_id":"34600"}],"messages":[{"from":"34600","id":"wamid.restart","timestamp":"1","type":"text","text":{"body":"hi"}}]}}]}]}"#;
    let signature = ingress::signature::header_value(b"s", body);
    let post = || {
        client
            .post(format!("{base}/webhook"))
            .header("x-hub-signature-256", signature.clone())
            .body(body.to_vec())
            .send()
    };
    let ready = || async {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };

    let deadline = Instant::now() + Duration::from_secs(15);
    while ready().await != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(post().await.expect("post").status(), 200);

    rabbitmqctl(&["stop_app"]);
    // Down: deliveries are refused quickly, never hanging, and readiness fails. Measured
    // first and asserted after the restart, so a failure cannot leave the broker stopped.
    let started = Instant::now();
    let down_status = post().await.map(|r| r.status().as_u16()).unwrap_or(0);
    let down_elapsed = started.elapsed();
    let down_ready = ready().await;
    rabbitmqctl(&["start_app"]);
    assert_eq!(down_status, 503);
    assert!(
        down_elapsed < Duration::from_secs(3),
        "refusal took {down_elapsed:?}"
    );
    assert_eq!(down_ready, 503);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if ready().await == 200 && post().await.map(|r| r.status() == 200).unwrap_or(false) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ingress did not recover after the broker restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    rabbitmqctl(&["await_startup"]);
    wait_until_queues_run(&namespace);
    let connection = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    shared::amqp::Topology::new(&namespace, 2)
        .delete(&channel)
        .await
        .expect("cleanup");
    assert_quorum_queues_work(&connection, &namespace).await;
}
