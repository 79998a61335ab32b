//! The fleet end to end on the real Redis and RabbitMQ: fake WhatsApp → ingress → partitions →
//! worker → fake WhatsApp, with the scheduler firing timers. Each test runs in its own
//! namespace and removes it afterwards.

mod chat;
mod conversations;
mod crash_points;
mod fleet;
mod flows;
mod resilience;
