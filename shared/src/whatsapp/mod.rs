//! WhatsApp Cloud API wire types and client.
