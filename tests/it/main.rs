//! Integration tests: one binary, one module per concern (faster to build
//! than one binary per file).

mod demo;
mod harness;

mod accounts;
mod browser;
mod cli;
mod cluster;
mod codec;
mod contrib;
mod docs;
mod faulty;
mod fuzz_corpus;
mod hashed;
mod operator;
mod pg_conns;
mod purge;
mod scale_out;
mod session;
mod suite;
mod tiers;
mod web;
