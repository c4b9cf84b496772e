//! poolproof

pub mod faults;
