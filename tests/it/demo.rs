//! The demo app's routes (examples/demo.rs), for tests that drive them.

#[allow(dead_code)] // its `main` is the example's, unused here
#[path = "../../examples/demo.rs"]
mod example;

pub use example::app;
