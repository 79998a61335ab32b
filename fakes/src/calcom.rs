//! Fake Cal.com API v2.
