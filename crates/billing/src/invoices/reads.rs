//! Reading invoices and credit notes (owners, billing admins, auditors).

use super::{InvoiceKind, Invoices, Issued};
use crate::entity::invoice::{self, InvoiceStatus};
use crate::entity::invoice_line;
use crate::error::{Error, Result};
use authz::{Action, Permit, ResourceType};
use kernel::{InvoiceId, Page, PageRequest, TenantTx};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
use std::collections::HashMap;
use uuid::Uuid;

impl Invoices {
    /// One issued invoice or credit note of the organization, with its lines.
    pub async fn issued(&self, tx: &TenantTx, permit: &Permit, id: InvoiceId) -> Result<Issued> {
        permit.ensure(tx, ResourceType::Billing, Action::Read, None)?;
        let invoice = self.find(tx, id).await?;
        if invoice.status == InvoiceStatus::Draft {
            return Err(Error::NotFound("invoice"));
        }
        let lines = tx
            .select::<invoice_line::Entity>()
            .filter(invoice_line::Column::InvoiceId.eq(id))
            .order_by_asc(invoice_line::Column::Position)
            .all(tx.conn())
            .await?;
        Ok(Issued { invoice, lines })
    }

    /// A page of invoices or credit notes, newest first, with their lines. Owners and
    /// billing admins.
    pub async fn list(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        kind: InvoiceKind,
        (page, order): (&PageRequest, kernel::ListOrder),
    ) -> Result<Page<Issued>> {
        permit.ensure(tx, ResourceType::Billing, Action::Read, None)?;
        let select = tx
            .select::<invoice::Entity>()
            .filter(invoice::Column::Kind.eq(kind))
            .filter(invoice::Column::Status.ne(InvoiceStatus::Draft));
        let invoices = kernel::page::keyset_in(select, invoice::Column::Id, page, order)
            .all(tx.conn())
            .await?;
        let invoices = Page::from_overfetch(invoices, page);
        let ids: Vec<Uuid> = invoices.items.iter().map(|i| i.id).collect();
        let mut lines: HashMap<Uuid, Vec<invoice_line::Model>> = HashMap::new();
        if !ids.is_empty() {
            for l in tx
                .select::<invoice_line::Entity>()
                .filter(invoice_line::Column::InvoiceId.is_in(ids))
                .order_by_asc(invoice_line::Column::Position)
                .all(tx.conn())
                .await?
            {
                lines.entry(l.invoice_id).or_default().push(l);
            }
        }
        Ok(invoices.map(|invoice| Issued {
            lines: lines.remove(&invoice.id).unwrap_or_default(),
            invoice,
        }))
    }
}
