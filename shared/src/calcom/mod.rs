//! Cal.com API v2 wire types and client.
