//! poolproof
