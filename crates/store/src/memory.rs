//! A store that keeps nothing: for tests and for brokers that explicitly opt
//! out of durability.

use crate::broker::{BrokerOp, BrokerSnapshot, BrokerStore, SyncFuture};

/// Forgets every change; `load` returns an empty snapshot.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDurability;

impl BrokerStore for NoDurability {
    fn load(&self) -> crate::Result<BrokerSnapshot> {
        Ok(BrokerSnapshot::default())
    }
    fn submit(&self, _op: BrokerOp) {}
    fn sync(&self) -> SyncFuture {
        Box::pin(async { Ok(()) })
    }
}
