//! Helpers for netshim's integration tests.
