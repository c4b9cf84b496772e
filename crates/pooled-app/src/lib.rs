//! pooled-app
