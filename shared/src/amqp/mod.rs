//! AMQP: the only module that knows queue and exchange names, their arguments, and how a
//! conversation maps to a partition queue.

mod publisher;
mod topology;

pub use publisher::{
    EnvelopeMessage, PublishError, PublishStages, Publisher, PublisherOptions, StageObserver,
    message_properties,
};
pub use topology::{DELIVERY_LIMIT, Topology};

use lapin::types::{AMQPValue, FieldTable, ShortString};

/// Reads a string header (either AMQP string type) from a message's headers.
pub fn header_str(headers: &FieldTable, name: &str) -> Option<String> {
    match headers.inner().get(&ShortString::from(name))? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}
