//! W3C Trace Context (`traceparent`, <https://www.w3.org/TR/trace-context/>) for logs.
//!
//! FlowForge does not export spans; it carries the caller's trace id through the API into the
//! task and the worker's logs, so that one trace id finds the request and every attempt of the
//! task it created (in Loki, or next to the spans of a caller that does trace).

use std::fmt;

use rand::RngCore as _;

/// A position in a trace: the trace id, this operation's span id and the trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// Parses a `traceparent` header value. Returns `None` for anything the specification says
    /// to ignore (bad length or characters, the all-zero ids, version `ff`).
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let mut parts = header.split('-');
        let version = parse_hex::<1>(parts.next()?)?[0];
        let trace_id = parse_hex::<16>(parts.next()?)?;
        let span_id = parse_hex::<8>(parts.next()?)?;
        let flags = parse_hex::<1>(parts.next()?)?[0];
        // Version 00 has exactly four fields; later versions may append more.
        if version == 0xff || (version == 0 && parts.next().is_some()) {
            return None;
        }
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The start of a new trace (sampled flag off: nothing records spans for it).
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        let mut trace_id = [0u8; 16];
        while trace_id == [0; 16] {
            rng.fill_bytes(&mut trace_id);
        }
        TraceContext {
            trace_id,
            span_id: new_span_id(),
            flags: 0,
        }
    }

    /// The caller's context if `header` holds a valid one, else a new trace; either way with a
    /// new span id of our own (the caller's span is our parent).
    pub fn continue_or_start(header: Option<&str>) -> Self {
        match header.and_then(Self::parse) {
            Some(parent) => parent.child(),
            None => Self::new_root(),
        }
    }

    /// A child operation: same trace, new span id, same flags.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// The trace id, 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id, 16 lower-case hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }
}

/// The `traceparent` header value (version 00).
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

fn new_span_id() -> [u8; 8] {
    let mut rng = rand::rng();
    let mut id = [0u8; 8];
    while id == [0; 8] {
        rng.fill_bytes(&mut id);
    }
    id
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    // Lower-case only, as the specification requires.
    if s.len() != 2 * N || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn parses_and_prints_the_specification_example() {
        let ctx = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(ctx.trace_id(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(ctx.span_id(), "b7ad6b7169203331");
        assert_eq!(ctx.to_string(), EXAMPLE);
    }

    #[test]
    fn rejects_what_the_specification_says_to_ignore() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
            "0g-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A later version may carry more fields; its first four still count.
        assert!(TraceContext::parse(
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more"
        )
        .is_some());
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_with_a_new_span() {
        let parent = TraceContext::parse(EXAMPLE).unwrap();
        let child = TraceContext::continue_or_start(Some(EXAMPLE));
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
        assert!(child.to_string().ends_with("-01"));
        let root = TraceContext::continue_or_start(Some("garbage"));
        assert_ne!(root.trace_id(), parent.trace_id());
        assert_eq!(TraceContext::parse(&root.to_string()), Some(root));
    }
}
