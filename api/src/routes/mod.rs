//! One module per resource; each exposes `router()`.

pub mod queues;
pub mod tasks;
