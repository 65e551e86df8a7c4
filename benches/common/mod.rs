//! What the benchmarks share: starting a real `doorstep serve` and reading the address it listens on, and a
//! small deterministic random generator.
// Each bench compiles this module on its own and uses only part of it.
#![allow(dead_code)]

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

/// Small deterministic generator (xorshift64*), so that every run draws the same territory and visits.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    /// Within about 0.05 degrees of `centre`.
    pub fn coordinate(&mut self, centre: f64) -> f64 {
        centre + (self.next() % 100_000) as f64 / 1_000_000.0 - 0.05
    }
}
