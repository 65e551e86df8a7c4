//! What the benchmarks share: starting a real `doorstep serve` and reading the address it listens on, a town of
//! places generated straight into SQLite, the office account, and a small deterministic random generator.
// Each bench compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
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

/// Generates a town straight into an SQLite database's projection tables with recursive SQL (the first
/// statement binds the number of places, the third the visits per place), so a million places take seconds rather than minutes. Kinds and
/// outcomes follow the demo town's mix; 300 places per grid, 10 grids per village, 30 villages per town. One
/// place in 50 has a visit that found it gone, at a random time among its visits.
pub const GENERATE_TOWN: &[&str] = &[
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1 - 1)
     INSERT INTO places (place_id, grid_code, village_code, town_code, kind, label, address, rural,
                         last_visit_at, last_visit_id, last_outcome, excluded)
     SELECT printf('P%07d', i), printf('G%05d', i / 300), printf('V%04d', i / 3000), printf('T%02d', i / 90000),
            CASE WHEN i % 20 = 0 THEN 'shop' WHEN i % 97 = 0 THEN 'building' WHEN i % 1999 = 0 THEN 'market'
                 WHEN i % 4999 = 0 THEN 'led_screen' ELSE 'household' END,
            printf('%d', i), NULL, CASE WHEN (i / 3000) % 3 = 0 THEN 0 ELSE 1 END,
            NULL, NULL, NULL, CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END
     FROM n",
    "INSERT INTO place_indicators (place_id, indicator, reached_at)
     SELECT place_id, ind, CASE WHEN (abs(random()) % 100) < 60 THEN 1700000000000 + abs(random()) % 2592000000 END
     FROM places JOIN (SELECT 'handbook' AS ind UNION ALL SELECT 'awareness' UNION ALL SELECT 'poster'
                       UNION ALL SELECT 'banner' UNION ALL SELECT 'led') ON
       (ind IN ('handbook', 'awareness') AND kind IN ('household', 'shop'))
       OR (ind = 'poster' AND (kind = 'building' OR (kind = 'household' AND rural = 1)))
       OR (ind = 'banner' AND kind = 'market') OR (ind = 'led' AND kind = 'led_screen')",
    "WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < $1 - 1)
     INSERT INTO visits (visit_id, place_id, grid_code, volunteer, device_id, at, outcome, handbook, briefed,
                         poster, banner, led_playing, note, lat, lon, received_at)
     SELECT printf('00000000-0000-7000-8000-%07d%05d', CAST(substr(place_id, 2) AS INTEGER), j), place_id, grid_code, printf('v%d', abs(random()) % 500), 'd',
            1700000000000 + abs(random()) % 2592000000, CASE WHEN excluded = 1 AND j = 0 THEN 'gone' ELSE 'completed' END,
            1, j % 2, 0, 0, 0, NULL, NULL, NULL, 0
     FROM places, k",
    "INSERT INTO area_coverage (level, area_code, village_code, town_code, indicator, eligible, reached, excluded)
     SELECT 'grid', p.grid_code, p.village_code, p.town_code, pi.indicator,
            SUM(CASE WHEN p.excluded = 0 THEN 1 ELSE 0 END),
            SUM(CASE WHEN p.excluded = 0 AND pi.reached_at IS NOT NULL THEN 1 ELSE 0 END), SUM(p.excluded)
     FROM place_indicators pi JOIN places p ON p.place_id = pi.place_id
     GROUP BY p.grid_code, p.village_code, p.town_code, pi.indicator",
    "INSERT INTO area_coverage (level, area_code, village_code, town_code, indicator, eligible, reached, excluded)
     SELECT 'village', village_code, village_code, town_code, indicator, SUM(eligible), SUM(reached), SUM(excluded)
     FROM area_coverage WHERE level = 'grid' GROUP BY village_code, town_code, indicator",
    "INSERT INTO area_coverage (level, area_code, village_code, town_code, indicator, eligible, reached, excluded)
     SELECT 'town', town_code, '', town_code, indicator, SUM(eligible), SUM(reached), SUM(excluded)
     FROM area_coverage WHERE level = 'grid' GROUP BY town_code, indicator",
    "INSERT INTO areas (code, name, kind, parent_code)
     SELECT DISTINCT town_code, town_code, 'town', NULL FROM places
     UNION ALL SELECT DISTINCT village_code, village_code, 'village', town_code FROM places
     UNION ALL SELECT DISTINCT grid_code, grid_code, 'grid', village_code FROM places",
];

/// Creates the office account in `data_dir` with the real binary `bin` (`doorstep admin create-user`).
pub fn create_office(bin: &str, data_dir: &Path, password: &str) -> Result<()> {
    let mut child = Command::new(bin)
        .arg("--profile")
        .arg(data_dir.join("profile"))
        .args(["admin", "create-user", "--data-dir"])
        .arg(data_dir)
        .args(["--username", "office", "--role", "office", "--password-stdin"])
        .env("DOORSTEP_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(format!("{password}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("doorstep admin create-user failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
