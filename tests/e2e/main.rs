//! The one integration-test binary: each area of the project is a module.

mod connectwise;
mod devcluster;
mod dispatch;
mod packaging;
