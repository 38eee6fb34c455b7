//! The values of the bounded labels whose series are exported at zero from
//! the start (`Metrics::initialise`): each list is the set its counter is
//! ever incremented with.

pub const RELOAD_RESULTS: &[&str] = &["ok", "unchanged", "error"];
pub const UPSTREAM_STAGES: &[&str] = &["connect", "proxy"];
pub const EVIDENCE_OPERATIONS: &[&str] = &["write", "fsync"];
pub const STORE_ERRORS: &[&str] = &["connect", "write", "queue-full"];
/// `request::Malformed::label`, `TargetError::label` and the signature headers.
pub const BAD_REQUEST_REASONS: &[&str] = &[
    "missing-host",
    "repeated-host",
    "repeated-user-agent",
    "headers-too-large",
    "signature-headers",
    "target-form",
    "target-escape",
    "target-encoded-separator",
    "target-backslash",
    "target-path-parameter",
    "target-invalid-utf8",
    "target-control",
    "target-fragment",
    "target-double-encoding",
];
/// The connection guard's reasons.
pub const CONNECTION_LIMITS: &[&str] = &[
    "total",
    "client",
    "header-timeout",
    "idle-timeout",
    "header-size",
    "header-memory",
];
/// The `crawler-error` codes of refused bids.
pub const PAYMENT_ERRORS: &[&str] = &[
    "ConflictingPriceHeaders",
    "InvalidCrawlerPriceValue",
    "StrongAuthRequired",
    "InvalidCrawlerExactPrice",
    "InvalidCrawlerMaxPrice",
];
pub const FETCH_RESULTS: &[&str] = &["ok", "error", "timeout"];
pub const LICENCE_REJECTIONS: &[&str] = &["invalid", "quota"];
pub const RDNS_RESULTS: &[&str] = &["hit", "confirmed", "unconfirmed", "busy"];
/// `respond::own::Document::name`.
pub const DOCUMENTS: &[&str] = &[
    "robots.txt",
    "offer",
    "tdmrep.json",
    "tdm-policy",
    "license.xml",
    "clause",
    "challenge",
];
/// `identify::webbotauth::Signature::label`, but `absent` (not counted).
pub const SIGNATURE_RESULTS: &[&str] = &[
    "verified",
    "signed-unbound",
    "unverifiable",
    "invalid",
    "hostile",
];
/// The console's controls (`POST /controls/<control>`) and their results.
pub const CONTROLS: &[&str] = &["allow", "block", "log-only", "remove"];
pub const CONTROL_RESULTS: &[&str] = &["ok", "forbidden", "unauthorized", "invalid", "error"];
