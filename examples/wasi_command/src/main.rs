//! `wc` as a WASI command: lines, words and bytes of each file named on the
//! command line, then the total, or of standard input — a program written for any WASI runtime,
//! which `wray run` runs as a job on the embedded runtime or a cluster, with
//! a job's limits and grants:
//!
//! ```sh
//! wray run --dir examples/data::/data $(wray build examples/wasi_command | tail -n1) -- /data/winequality-red.csv
//! ```
//!
//! Files are seen only in directories granted with `--dir`; a file that
//! cannot be read is reported on standard error and the exit status is 1,
//! as `wc`'s is.

use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        // No files: standard input, which `wray run` passes to a command
        // it runs on its embedded runtime (a job sent to a cluster reads
        // an empty one).
        let mut bytes = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes) {
            eprintln!("wc: standard input: {e}");
            return ExitCode::FAILURE;
        }
        let [lines, words, len] = count(&bytes);
        println!("{lines:>7} {words:>7} {len:>7}");
        return ExitCode::SUCCESS;
    }
    let mut total = [0usize; 3];
    let mut failed = false;
    for file in &files {
        match std::fs::read(file) {
            Ok(bytes) => {
                let counts = count(&bytes);
                println!("{:>7} {:>7} {:>7} {file}", counts[0], counts[1], counts[2]);
                for (t, c) in total.iter_mut().zip(counts) {
                    *t += c;
                }
            }
            Err(e) => {
                eprintln!("wc: {file}: {e}");
                failed = true;
            }
        }
    }
    if files.len() > 1 {
        println!("{:>7} {:>7} {:>7} total", total[0], total[1], total[2]);
    }
    // What a job learns from its environment (`wray run --env`).
    if let Ok(who) = std::env::var("WC_REQUESTED_BY") {
        println!("requested by {who}");
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Lines, words (runs of non-whitespace) and bytes, as `wc` counts them.
fn count(bytes: &[u8]) -> [usize; 3] {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    let words = bytes.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).count();
    [lines, words, bytes.len()]
}
