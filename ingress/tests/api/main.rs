//! Ingress against the real RabbitMQ on this machine. Each test gets its own namespace (its
//! own exchanges and queues) and deletes it afterwards, so tests run in parallel safely.

mod connections;
mod delivery;
mod handshake;
mod helpers;
mod recovery;
