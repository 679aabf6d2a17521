//! Delivery metrics: each attempt by notifier and outcome, which notifiers fail for good, and
//! the claims this process lost to another replica.
//! Registered by [`DeliveryMetrics::register`] under the registry the daemon hands in.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::alert_model::Notifier;

/// How a delivery attempt ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DeliveryOutcome {
    sent,
    rate_limited,
    retry,
    permanent_failure,
    gave_up,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifierOutcome {
    notifier: Notifier,
    outcome: DeliveryOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifierLabel {
    notifier: Notifier,
}

/// `driftd_notifications_total{notifier,outcome}`, `driftd_notifier_failing{notifier}` and
/// `driftd_notification_claims_lost_total{notifier}`. Cheap to clone (the handles are shared).
#[derive(Clone, Debug, Default)]
pub struct DeliveryMetrics {
    notifications: Family<NotifierOutcome, Counter>,
    notifier_failing: Family<NotifierLabel, Gauge>,
    claims_lost: Family<NotifierLabel, Counter>,
}

impl DeliveryMetrics {
    pub fn register(registry: &mut Registry) -> DeliveryMetrics {
        let m = DeliveryMetrics::default();
        registry.register(
            "notifications",
            "Notification delivery attempts by notifier and outcome",
            m.notifications.clone(),
        );
        registry.register(
            "notifier_failing",
            "1 when a notifier's last delivery failed for good (bad URL, revoked webhook)",
            m.notifier_failing.clone(),
        );
        registry.register(
            "notification_claims_lost",
            "Delivery attempts whose outcome was not recorded: the claim lapsed and another replica took the notification over",
            m.claims_lost.clone(),
        );
        m
    }

    /// One delivery attempt of `notifier` ended with `outcome`.
    pub fn attempted(&self, notifier: Notifier, outcome: DeliveryOutcome) {
        self.notifications
            .get_or_create(&NotifierOutcome { notifier, outcome })
            .inc();
    }

    /// Whether `notifier`'s last delivery failed for good.
    pub fn failing(&self, notifier: Notifier, failing: bool) {
        self.notifier_failing
            .get_or_create(&NotifierLabel { notifier })
            .set(i64::from(failing));
    }

    /// An attempt at `notifier` whose outcome was not recorded: the claim had passed to
    /// another replica.
    pub fn claim_lost(&self, notifier: Notifier) {
        self.claims_lost
            .get_or_create(&NotifierLabel { notifier })
            .inc();
    }
}
