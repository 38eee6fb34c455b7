//! A request's id: the process's prefix and its sequence number, a copyable
//! value written out only where it is shown (the access log, the evidence
//! record, built on the writer thread).

/// `{prefix:08x}-{seq:x}`, unique within a process and, by its prefix, across
/// restarts and upgrades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    pub prefix: u32,
    pub seq: u64,
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}-{:x}", self.prefix, self.seq)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_id_is_its_prefix_and_sequence_in_hex() {
        let id = super::RequestId {
            prefix: 0xab,
            seq: 255,
        };
        assert_eq!(id.to_string(), "000000ab-ff");
    }
}
