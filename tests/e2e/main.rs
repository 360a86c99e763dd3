//! End-to-end tests that start the real `orchestra` binary.
