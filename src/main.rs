//! The `battorrent` command-line tool.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Output piped into `head` and the like: end quietly when the reader goes away, as
    // Unix tools do, instead of panicking on the failed write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // Errors quote torrent names, paths, tracker messages: text from outside.
            eprintln!("error: {}", battorrent::text::escape(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
