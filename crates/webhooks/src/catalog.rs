//! The event types partners can subscribe to: one per domain event they care about,
//! each fed by one or more actions of the audit trail. The README's table is this list.

/// An event type of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// Its name, as sent in `type` (`project.created`).
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
    /// The audit actions that make it.
    pub actions: &'static [&'static str],
}

/// Every event type.
pub const CATALOG: &[EventType] = &[
    EventType {
        name: "project.created",
        description: "A project was created.",
        actions: &["project.created"],
    },
    EventType {
        name: "project.updated",
        description: "A project was renamed or changed.",
        actions: &["project.updated"],
    },
    EventType {
        name: "document.created",
        description: "A document was created.",
        actions: &["document.created"],
    },
    EventType {
        name: "document.updated",
        description: "A document was edited.",
        actions: &["document.edited"],
    },
    EventType {
        name: "document.submitted",
        description: "A document was submitted for review.",
        actions: &["document.submitted"],
    },
    EventType {
        name: "document.approved",
        description: "A document was approved.",
        actions: &["document.approved"],
    },
    EventType {
        name: "document.changes_requested",
        description: "A reviewer asked for changes to a document.",
        actions: &["document.changes_requested"],
    },
    EventType {
        name: "document.published",
        description: "A document was published.",
        actions: &["document.published"],
    },
    EventType {
        name: "document.archived",
        description: "A document was archived.",
        actions: &["document.archived"],
    },
    EventType {
        name: "member.added",
        description: "Someone joined the organization (accepted an invitation).",
        actions: &["invitation.accepted"],
    },
    EventType {
        name: "member.role_changed",
        description: "A member's role changed.",
        actions: &["member.role_changed"],
    },
    EventType {
        name: "member.removed",
        description: "A member was removed or left.",
        actions: &["member.removed", "member.left"],
    },
    EventType {
        name: "invoice.finalized",
        description: "An invoice was finalized (numbered, immutable).",
        actions: &["invoice.finalized"],
    },
    EventType {
        name: "invoice.paid",
        description: "An invoice was paid.",
        actions: &["invoice.paid"],
    },
    EventType {
        name: "invoice.voided",
        description: "An invoice was voided.",
        actions: &["invoice.voided"],
    },
    EventType {
        name: "credit_note.issued",
        description: "A credit note was issued.",
        actions: &["credit_note.issued"],
    },
    EventType {
        name: "payment.failed",
        description: "A payment attempt failed.",
        actions: &["payment.failed"],
    },
    EventType {
        name: "subscription.started",
        description: "A subscription started.",
        actions: &["subscription.started"],
    },
    EventType {
        name: "subscription.plan_changed",
        description: "A subscription moved to another plan.",
        actions: &["subscription.plan_changed"],
    },
    EventType {
        name: "subscription.renewed",
        description: "A subscription began a new period.",
        actions: &["subscription.renewed"],
    },
    EventType {
        name: "subscription.past_due",
        description: "A subscription's invoice is overdue.",
        actions: &["subscription.past_due"],
    },
    EventType {
        name: "subscription.suspended",
        description: "A subscription was suspended for non-payment (read-only).",
        actions: &["subscription.suspended"],
    },
    EventType {
        name: "subscription.reactivated",
        description: "A suspended or past-due subscription is active again.",
        actions: &["subscription.reactivated"],
    },
    EventType {
        name: "subscription.canceled",
        description: "A subscription ended.",
        actions: &["subscription.canceled"],
    },
    EventType {
        name: "webhook_endpoint.disabled",
        description: "A webhook endpoint was disabled after failing for five days.",
        actions: &["webhook_endpoint.disabled"],
    },
];

/// The event type an audit action makes, if any.
pub fn for_action(action: &str) -> Option<&'static EventType> {
    CATALOG.iter().find(|t| t.actions.contains(&action))
}

/// The event type named `name`, if the catalog has it.
pub fn named(name: &str) -> Option<&'static EventType> {
    CATALOG.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_and_actions_are_unique_and_well_formed() {
        let names: BTreeSet<_> = CATALOG.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), CATALOG.len());
        let actions: Vec<_> = CATALOG.iter().flat_map(|t| t.actions.iter()).collect();
        let unique: BTreeSet<_> = actions.iter().collect();
        assert_eq!(unique.len(), actions.len(), "an action feeds one type");
        for t in CATALOG {
            let (noun, verb) = t.name.split_once('.').expect("noun.verb");
            assert!(!noun.is_empty() && !verb.is_empty());
            assert!(
                t.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
            );
        }
        assert_eq!(
            for_action("member.left").map(|t| t.name),
            Some("member.removed")
        );
        assert_eq!(for_action("user.logged_in"), None);
        assert_eq!(
            named("project.created").map(|t| t.actions),
            Some(&["project.created"][..])
        );
    }
}
