//! Topology clean-up against the real RabbitMQ on 127.0.0.1:5672.

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use shared::amqp::Topology;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Test harnesses call this from `Drop`, often while a runtime is still running on the
/// dropping thread; it must still remove every queue of the namespace.
#[tokio::test]
async fn delete_from_drop_removes_the_namespace_from_inside_a_runtime() {
    let namespace = format!("test.shared.topology.{}.", std::process::id());
    let topology = Topology::new(&namespace, 2);
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ at 127.0.0.1:5672");
    let channel = connection.create_channel().await.expect("channel");
    topology.declare(&channel).await.expect("declare");

    topology.delete_from_drop(AMQP_URL);

    for queue in [
        topology.partition_queue(0),
        topology.partition_queue(1),
        topology.dead_letter_queue(),
    ] {
        // A passive declare of a missing queue closes the channel with 404: use a fresh one.
        let probe = connection.create_channel().await.expect("channel");
        let exists = probe
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .is_ok();
        assert!(!exists, "{queue} is still there");
    }
}
