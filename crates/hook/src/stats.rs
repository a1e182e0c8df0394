//! What the hook has done, for `/healthz`, `/readyz` and `/metrics` on its ops port.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::json;

pub const DELIVERED: &str = "pump_hook_sets_delivered_total";
pub const NOT_DELIVERED: &str = "pump_hook_sets_not_delivered_total";
pub const WAITING: &str = "pump_hook_set_waiting";

#[derive(Debug, Default)]
pub struct Stats {
    /// The sets consumer is in place.
    pub ready: AtomicBool,
    /// Taken by the receiver (logged in PUMP, or a 2xx).
    pub delivered: AtomicU64,
    /// Refused by the receiver's own rule (403: CV logging off in PUMP): kept aside.
    pub declined: AtomicU64,
    /// Set aside: the receiver can never take it, or kept failing.
    pub set_aside: AtomicU64,
    /// A set is being tried again (the receiver fails, PUMP lacks its exercise).
    pub waiting: AtomicBool,
}

impl Stats {
    pub fn health(&self) -> serde_json::Value {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({"delivered": n(&self.delivered), "declined": n(&self.declined), "set_aside": n(&self.set_aside),
               "waiting": self.waiting.load(Ordering::Relaxed)})
    }

    pub fn prometheus(&self, nats_connected: f64) -> String {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let mut p = pump_bus::ops::PromText::for_service(nats_connected);
        p.single(DELIVERED, "counter", "Sets the receiver took (logged in PUMP, or answered 2xx).", n(&self.delivered));
        p.family(NOT_DELIVERED, "counter", "Sets not delivered, by why: kept on pump.hook.NAME.aside.")
            .sample(NOT_DELIVERED, &[("reason", "declined")], n(&self.declined))
            .sample(NOT_DELIVERED, &[("reason", "set_aside")], n(&self.set_aside));
        let waiting = f64::from(u8::from(self.waiting.load(Ordering::Relaxed)));
        p.single(WAITING, "gauge", "1 while a set is being tried again.", waiting);
        p.finish()
    }
}
