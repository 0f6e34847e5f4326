//! Pure decisions of the dispatcher, each with its table tests. No I/O here: the worker gathers
//! the facts (snapshot, index, PSA answers, caches) and acts on what these functions return.

pub mod action;
pub mod batch;
pub mod contact;
pub mod lifecycle;
pub mod marker;
pub mod render;
pub mod reopen;
pub mod retry;
pub mod routing;
pub mod ticket_route;
pub mod storm;
pub mod values;
