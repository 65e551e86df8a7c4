//! `doorstep migrate`: copies a town's data from the embedded SQLite database to PostgreSQL, then verifies
//! row counts and that every grid document has the same heads on both sides.

use crate::store::db::{Backend, Db};
use crate::store::grids::GridRepo;
use anyhow::{bail, Context, Result};
use sqlx::any::AnyRow;
use sqlx::{Row, Transaction};

/// What a column holds, from its declared type.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Int,
    Real,
    Blob,
}

fn kind_of(declared: &str) -> Result<Kind> {
    let t = declared.to_ascii_uppercase();
    Ok(if t.contains("TEXT") {
        Kind::Text
    } else if t.contains("INT") {
        Kind::Int
    } else if t.contains("DOUBLE") || t.contains("REAL") {
        Kind::Real
    } else if t.contains("BLOB") {
        Kind::Blob
    } else {
        bail!("cannot copy a column of type {declared}")
    })
}

pub struct TableReport {
    pub table: String,
    pub rows: i64,
}

pub struct Report {
    pub tables: Vec<TableReport>,
    pub grids_verified: usize,
}

/// Copies everything from `from` (SQLite) into `to` (PostgreSQL, which must hold no data yet).
pub async fn sqlite_to_postgres(from_url: &str, to_url: &str) -> Result<Report> {
    let from = Db::connect(from_url).await.context("opening the source")?;
    let to = Db::connect(to_url).await.context("opening the destination")?;
    if from.backend != Backend::Sqlite || to.backend != Backend::Postgres {
        bail!("migrate copies from sqlite://… to postgres://…");
    }
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&from.pool)
    .await?;
    for (table,) in &tables {
        let (n,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(&to.pool).await?;
        if n > 0 {
            bail!("the destination already holds data (table {table} has {n} rows); migrate into an empty database");
        }
    }
    let mut tx = to.pool.begin().await?;
    let mut report = Report { tables: Vec::new(), grids_verified: 0 };
    for (table,) in &tables {
        let rows = copy_table(&from, &mut tx, table).await.with_context(|| format!("copying {table}"))?;
        report.tables.push(TableReport { table: table.clone(), rows });
    }
    // Copied ids must not be handed out again.
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('audit', 'id'), COALESCE((SELECT MAX(id) FROM audit), 0) + 1, false)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    report.grids_verified = verify(&from, &to, &report).await?;
    Ok(report)
}

async fn copy_table(from: &Db, tx: &mut Transaction<'static, sqlx::Any>, table: &str) -> Result<i64> {
    let columns: Vec<(String, String)> = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info({table})")))
        .fetch_all(&from.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<String, _>("name")?, r.try_get::<String, _>("type")?)))
        .collect::<Result<_>>()?;
    let kinds: Vec<Kind> = columns.iter().map(|(_, t)| kind_of(t)).collect::<Result<_>>()?;
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let select = format!("SELECT {} FROM {table}", names.join(", "));
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let insert = format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), placeholders.join(", "));
    let rows: Vec<AnyRow> = sqlx::query(sqlx::AssertSqlSafe(select)).fetch_all(&from.pool).await?;
    for row in &rows {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
        for (i, kind) in kinds.iter().enumerate() {
            q = match kind {
                Kind::Text => q.bind(row.try_get::<Option<String>, _>(i)?),
                Kind::Int => q.bind(row.try_get::<Option<i64>, _>(i)?),
                Kind::Real => q.bind(crate::store::projection::NullableF64(row.try_get::<Option<f64>, _>(i)?)),
                Kind::Blob => q.bind(row.try_get::<Option<Vec<u8>>, _>(i)?),
            };
        }
        q.execute(&mut **tx).await?;
    }
    Ok(rows.len() as i64)
}

/// Compares row counts, then loads every grid document from both databases and compares their heads.
async fn verify(from: &Db, to: &Db, report: &Report) -> Result<usize> {
    for t in &report.tables {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", t.table)))
            .fetch_one(&to.pool)
            .await?;
        if n != t.rows {
            bail!(
                "verification failed: table {} has {} rows in the source but {n} in the destination",
                t.table,
                t.rows
            );
        }
    }
    let grids: Vec<(String,)> =
        sqlx::query_as("SELECT grid_code FROM grid_docs ORDER BY grid_code").fetch_all(&from.pool).await?;
    let (src, dst) = (
        GridRepo::new(from.clone(), crate::store::grids::DEFAULT_CACHE_BYTES),
        GridRepo::new(to.clone(), crate::store::grids::DEFAULT_CACHE_BYTES),
    );
    for (code,) in &grids {
        let a = src.load_for_check(code).await?;
        let b = dst.load_for_check(code).await?;
        if a != b {
            bail!("verification failed: grid {code} has different heads after the copy");
        }
    }
    Ok(grids.len())
}
