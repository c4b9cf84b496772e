//! The `poolproof` command; all logic lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    poolproof::cli::main().into()
}
