//! The one integration-test binary: each area of the project is a module.

mod adoption;
mod autotask;
mod autotask_contract;
mod bad_resources;
mod bench;
mod bms;
mod bms_contract;
mod cli;
mod connectwise;
mod controllers;
mod devcluster;
mod dispatch;
mod faults;
mod flow;
mod gitops;
mod ha;
mod health;
mod intake;
mod packaging;
mod providers;
mod restart;
mod sandbox_admin;
mod secrets;
mod sources;
mod support;
mod tour;
