//! Fake WhatsApp Cloud API.
