#![forbid(unsafe_code)]
//! Loopback fakes of the WhatsApp Cloud API and Cal.com API v2.

pub mod calcom;
pub mod whatsapp;
