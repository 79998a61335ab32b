//! The scheduler against the real Redis and RabbitMQ on this machine. Each test gets its own
//! namespace (keys, exchanges, queues) and deletes it afterwards, so tests run in parallel.

mod firing;
mod helpers;
mod leases;
mod racing;
