//! SQL conditions written from a campaign definition: which places count toward an indicator, and which visits
//! reach it. For counting as a definition says without going through the projected rows (a past month counted
//! with an earlier version, a recount in a few statements).

use crate::store::error::StoreError;
use crate::store::StoreResult;
use client_core::campaign::{is_id, IndicatorDef, Reach, Setting};
use client_core::grid::model::ALWAYS_RECORDED;

/// The ids a campaign definition puts into SQL text: checked ids only (lowercase letters, digits, `_`), so they
/// cannot carry a quote.
fn sql_id(id: &str) -> StoreResult<&str> {
    if is_id(id) {
        Ok(id)
    } else {
        Err(StoreError::internal(format!("{id:?} is not a campaign id")))
    }
}

/// Ids as a list of SQL literals, for `IN (...)`.
pub(super) fn id_list<'a>(ids: impl IntoIterator<Item = &'a String>) -> StoreResult<String> {
    let quoted = ids.into_iter().map(|id| Ok(format!("'{}'", sql_id(id)?))).collect::<StoreResult<Vec<_>>>()?;
    Ok(quoted.join(", "))
}

/// Whether place `p` counts toward the indicator: its kind and setting, as one of the definition's counts says.
pub(super) fn eligible_sql(indicator: &IndicatorDef) -> StoreResult<String> {
    let mut any = Vec::new();
    for count in &indicator.counts {
        let kinds = count.kinds.iter().map(|k| Ok(format!("'{}'", sql_id(k)?))).collect::<StoreResult<Vec<_>>>()?;
        let setting = match count.setting {
            Setting::Any => "",
            Setting::Village => " AND p.rural <> 0",
            Setting::Community => " AND p.rural = 0",
        };
        any.push(format!("(p.kind IN ({}){setting})", kinds.join(", ")));
    }
    Ok(if any.is_empty() { "FALSE".to_string() } else { any.join(" OR ") })
}

/// Whether visit `v` reaches the indicator: delivered what reaches it and, where the indicator asks for a photo,
/// has a photo that stands (`visits.photos` counts those the office has not rejected).
pub(super) fn indicator_reach_sql(indicator: &IndicatorDef) -> StoreResult<String> {
    let delivered = reach_sql(&indicator.reached_by)?;
    Ok(if indicator.photo_required { format!("({delivered} AND v.photos > 0)") } else { delivered })
}

/// Whether visit `v` delivered what reaches the indicator: a column of its own for the deliveries every visit
/// records, its comma-separated `further_deliveries` for the others (`_` escaped: LIKE reads it as any letter).
pub(super) fn reach_sql(reach: &Reach) -> StoreResult<String> {
    let delivered = |id: &String| -> StoreResult<String> {
        let id = sql_id(id)?;
        Ok(if ALWAYS_RECORDED.contains(&id) {
            format!("v.{id} <> 0")
        } else {
            format!("(',' || v.further_deliveries || ',') LIKE '%,{}%' ESCAPE '\\'", id.replace('_', "\\_") + ",")
        })
    };
    let (ids, join) = match reach {
        Reach::AnyOf(ids) => (ids, " OR "),
        Reach::AllOf(ids) => (ids, " AND "),
    };
    let parts = ids.iter().map(delivered).collect::<StoreResult<Vec<_>>>()?;
    Ok(if parts.is_empty() { "FALSE".to_string() } else { format!("({})", parts.join(join)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which of these visits (id, further deliveries, briefed) the reach selects, on SQLite and, where the tests
    /// have one, PostgreSQL.
    async fn selected(reach: &Reach) -> Vec<Vec<String>> {
        let visits = "SELECT 'v1' AS id, 'two_cards' AS further_deliveries, 0 AS briefed \
            UNION ALL SELECT 'v2', 'twoxcards,other', 1 UNION ALL SELECT 'v3', 'x,two_cards,y', 1 \
            UNION ALL SELECT 'v4', 'two_cards_old', 0 UNION ALL SELECT 'v5', '', 1";
        let sql = format!("SELECT v.id FROM ({visits}) v WHERE {} ORDER BY v.id", reach_sql(reach).unwrap());
        let mut urls = vec!["sqlite::memory:".to_string()];
        urls.extend(std::env::var("DOORSTEP_TEST_PG_URL").ok());
        let mut out = Vec::new();
        sqlx::any::install_default_drivers();
        for url in urls {
            // A plain connection: the statement reads no table.
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).fetch_all(&pool).await.unwrap();
            out.push(rows.into_iter().map(|(id,)| id).collect());
        }
        out
    }

    /// A further delivery matches whole ids in the list, `_` included, and the deliveries every visit records
    /// match their columns.
    #[tokio::test]
    async fn a_definitions_reach_selects_the_visits_that_delivered_it() {
        let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for got in selected(&Reach::AnyOf(ids(&["two_cards"]))).await {
            assert_eq!(got, ["v1", "v3"]);
        }
        for got in selected(&Reach::AllOf(ids(&["two_cards", "briefed"]))).await {
            assert_eq!(got, ["v3"]);
        }
        for got in selected(&Reach::AnyOf(ids(&["two_cards", "briefed"]))).await {
            assert_eq!(got, ["v1", "v2", "v3", "v5"]);
        }
        assert!(reach_sql(&Reach::AnyOf(ids(&["x'; DROP TABLE visits; --"]))).is_err());
    }
}
