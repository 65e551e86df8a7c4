//! What the benchmarks share: starting a real `doorstep serve` and reading the address it listens on.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Spawns `cmd` (a `doorstep serve --listen 127.0.0.1:0 …` command) with `DOORSTEP_LOG` set to `log`, waits for
/// the line that names its address and returns the URL and the process. Its stdout is drained afterwards, so
/// the server never blocks on a full pipe.
pub fn spawn_server(mut cmd: Command, log: &str) -> Result<(String, Child)> {
    let mut child = cmd
        .env("DOORSTEP_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting doorstep serve")?;
    let mut reader = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    let url = loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("doorstep serve exited before listening ({})", child.wait()?);
        }
        if let Some(url) = line.trim().strip_prefix("Doorstep listening on ") {
            break url.to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Ok((url, child))
}
