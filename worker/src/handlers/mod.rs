//! Built-in task kinds.

mod fail;
mod http;
mod noop;
mod sleep;

pub use fail::Fail;
pub use http::{AllowList, Http};
pub use noop::Noop;
pub use sleep::Sleep;

use crate::Registry;

/// Which built-ins to register and how.
#[derive(Debug, Clone, Default)]
pub struct BuiltinSettings {
    /// Hosts the `http` kind may call.
    pub http_allow: AllowList,
    /// Register the `fail` drill kind.
    pub enable_fail: bool,
}

/// A registry with the built-in kinds.
pub fn builtin_registry(settings: &BuiltinSettings) -> Registry {
    let mut registry = Registry::new();
    registry
        .register("noop", Noop)
        .register("sleep", Sleep)
        .register("http", Http::new(settings.http_allow.clone()));
    if settings.enable_fail {
        registry.register("fail", Fail);
    }
    registry
}
