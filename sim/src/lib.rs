#![forbid(unsafe_code)]
//! The sandbox: the whole fleet (ingress, workers, scheduler) on one machine, against loopback
//! fakes of the WhatsApp Cloud API and Cal.com API v2, driven by simulated customers through
//! the real HTTP clients and wire formats.
//!
//! - [`world`]: the simulated businesses, rendered as the tenants file and the fakes' setup.
//! - [`persona`]: customers as reactive scripts (pure; unit-tested on recorded bot messages).
//! - [`conversation`]: runs a persona over the wire and records what happened.
//! - [`fleet`] and [`sandbox`]: preflight, start, stop and clean up a run.
//! - [`demo`], [`chat`], [`load`]: the three modes; [`report`] and [`transcript`] print them.

pub mod chat;
pub mod conversation;
pub mod demo;
pub mod fleet;
pub mod load;
pub mod persona;
pub mod report;
pub mod sandbox;
pub mod transcript;
pub mod world;
