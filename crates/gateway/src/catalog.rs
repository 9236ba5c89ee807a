//! The billing catalog's import, in the platform's transaction (recorded in its audit
//! trail): for `platform catalog import`, the `importCatalog` mutation and the demo data.

use crate::startup::AppState;

/// Imports a catalog in the platform's transaction (recorded in its audit trail);
/// returns one line per metric and plan saying what happened.
pub async fn import_catalog(
    state: &AppState,
    catalog: &billing::CatalogFile,
) -> anyhow::Result<Vec<String>> {
    let tx = state.tenancy.operator_tx().await?;
    let report = state.catalog.import(&tx, catalog).await?;
    tx.commit().await?;
    Ok(report
        .into_iter()
        .map(|imported| match imported {
            billing::Imported::MetricCreated(code) => format!("metric {code}: created"),
            billing::Imported::MetricUnchanged(code) => format!("metric {code}: unchanged"),
            billing::Imported::Published(code, v) => format!("plan {code}: published version {v}"),
            billing::Imported::Unchanged(code, v) => {
                format!("plan {code}: unchanged (version {v})")
            }
        })
        .collect())
}
