//! The one integration-test binary: each area of the project is a module.

mod bad_resources;
mod bench;
mod bms;
mod cli;
mod connectwise;
mod controllers;
mod devcluster;
mod dispatch;
mod faults;
mod flow;
mod gitops;
mod intake;
mod packaging;
mod providers;
mod restart;
mod sandbox_admin;
mod secrets;
mod support;
