//! Which writes an organization in restricted standing still runs. Each mutation declares
//! its [`WriteClass`] where it calls [`crate::context::write`]; [`WriteClass::refusal`]
//! decides from that class and the organization's [`Standing`] alone. Reads are never
//! restricted.

/// What a mutation still does when its organization's standing restricts writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteClass {
    /// A change to the organization's data: refused while its subscription is suspended
    /// for non-payment, and while it is pending deletion.
    Ordinary,
    /// Settling up or winding down: paying, changing or cancelling the plan, reporting
    /// usage, leaving, removing or revoking things, purging the audit trail, asking for
    /// deletion. Runs while suspended (an organization must be able to pay, or to leave
    /// and take nothing further); refused pending deletion.
    Settling,
    /// The hand-back: cancelling the deletion, or exporting the data. Runs in both.
    HandBack,
}

/// The organization's standing, as far as writes are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    /// Its owners asked for its deletion and the grace period runs.
    pub pending_deletion: bool,
    /// Its subscription is suspended for non-payment.
    pub suspended: bool,
}

/// Why a write is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `CONFLICT`, `reason = "PENDING_DELETION"`.
    PendingDeletion,
    /// `PAYMENT_REQUIRED`.
    PaymentRequired,
}

impl WriteClass {
    /// Whether the write runs while the subscription is suspended. When it does, the
    /// caller need not look the suspension up.
    pub fn runs_while_suspended(self) -> bool {
        matches!(self, Self::Settling | Self::HandBack)
    }

    /// Whether the write runs while the organization is pending deletion.
    pub fn runs_pending_deletion(self) -> bool {
        matches!(self, Self::HandBack)
    }

    /// The refusal of this write in an organization of `standing`, if any. Pending
    /// deletion is answered first: it is the graver state, and known without a query.
    pub fn refusal(self, standing: Standing) -> Option<Refusal> {
        if standing.pending_deletion && !self.runs_pending_deletion() {
            return Some(Refusal::PendingDeletion);
        }
        if standing.suspended && !self.runs_while_suspended() {
            return Some(Refusal::PaymentRequired);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{Refusal, Standing, WriteClass};

    #[test]
    fn each_class_in_each_standing() {
        use Refusal::{PaymentRequired, PendingDeletion};
        use WriteClass::{HandBack, Ordinary, Settling};
        let good = Standing::default();
        let suspended = Standing {
            suspended: true,
            ..good
        };
        let pending = Standing {
            pending_deletion: true,
            ..good
        };
        let both = Standing {
            pending_deletion: true,
            suspended: true,
        };
        let table = [
            (Ordinary, good, None),
            (Ordinary, suspended, Some(PaymentRequired)),
            (Ordinary, pending, Some(PendingDeletion)),
            (Ordinary, both, Some(PendingDeletion)),
            (Settling, good, None),
            (Settling, suspended, None),
            (Settling, pending, Some(PendingDeletion)),
            (Settling, both, Some(PendingDeletion)),
            (HandBack, good, None),
            (HandBack, suspended, None),
            (HandBack, pending, None),
            (HandBack, both, None),
        ];
        for (class, standing, expected) in table {
            assert_eq!(
                class.refusal(standing),
                expected,
                "{class:?} in {standing:?}"
            );
        }
    }

    /// A class that runs while suspended is never refused for it, so the caller may
    /// skip looking the suspension up.
    #[test]
    fn a_class_running_while_suspended_needs_no_look_up() {
        for class in [
            WriteClass::Ordinary,
            WriteClass::Settling,
            WriteClass::HandBack,
        ] {
            for pending_deletion in [false, true] {
                if class.runs_while_suspended() {
                    let unknown = Standing {
                        pending_deletion,
                        suspended: false,
                    };
                    let suspended = Standing {
                        pending_deletion,
                        suspended: true,
                    };
                    assert_eq!(class.refusal(unknown), class.refusal(suspended));
                }
            }
        }
    }
}
