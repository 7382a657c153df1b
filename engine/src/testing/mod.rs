//! Test doubles of the engine's ports, built only for tests and benchmarks
//! (the `testing` feature): the binary never links them.

pub mod fake;
pub mod remote;
