#![forbid(unsafe_code)]
//! Language understanding for booking conversations, as a pure function.
//!
//! `understand(text, &context)` reads one customer message and returns what it understood:
//! the language, ranked intents, resolved date/time expressions, a choice among the options
//! last shown, and service/staff mentions. No network, no clock, no randomness: `now` and the
//! business time zone come in through [`Context`], so every result is reproducible.

mod model;

pub use model::*;
