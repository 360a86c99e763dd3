//! End-to-end tests that start the real `orchestra` binary.
//!
//! Every test starts its own host (own temporary database, plugin folder and port) and
//! talks to it over HTTP only. Build the plugins first: `bash scripts/plugins.sh`. Run with
//! `cargo test -p orchestra --test e2e -- --test-threads 2`.

mod common;

mod access;
mod agents;
mod alerts;
mod bad_input;
mod browser;
mod browser_job;
mod browser_pages;
mod browser_recurring;
mod cli;
mod continuations;
mod crash;
mod dashboard;
mod dashboard_links;
mod dashboard_pages;
mod dashboard_recurring;
mod event_walk;
mod events;
mod jobs;
mod leader;
mod lifecycle;
mod limits;
mod logs;
mod metrics;
mod openapi;
mod outbound;
mod output;
mod polyglot;
mod postgres;
mod queues;
mod recurring;
mod reload;
mod sandbox;
mod search;
mod sessions;
mod stats;
mod storage;
mod tasks;
mod workflows;
