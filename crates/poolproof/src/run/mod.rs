//! `poolproof validate`: one scenario from YAML to verdict — provision services, start the app,
//! warm up, load (with the fault timeline), sample the app, stop, evaluate SLAs, write reports,
//! tear down (also on error, Ctrl-C and panic).

pub mod env;
pub mod id;
