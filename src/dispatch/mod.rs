//! The ticket dispatcher: intake HTTP API, durable store, per-key workers, grouping, routing,
//! value mapping, templates and the failsafe e-mail.

pub mod budget;
pub mod cache;
pub mod clock;
pub mod connection_metrics;
pub mod decide;
pub mod deliver;
pub mod event;
pub mod failsafe;
pub mod grouping;
pub mod intake;
pub mod metrics;
pub mod problems;
pub mod recurrence;
pub mod stats;
pub mod store;
pub mod storm;
pub mod worker;
