//! What development and demonstrations use, never a production request: the demo data
//! `make run` loads.

pub mod seed;
