//! Forwarding headers from a trusted peer: the client address is always the
//! peer or an address the headers name, never junk.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rempart::request::{AddrSource, TrustedProxies};

fuzz_target!(|data: &[u8]| {
    let trusted = TrustedProxies::new(vec!["127.0.0.0/8".parse().expect("net"), "10.0.0.0/8".parse().expect("net")]);
    let headers: Vec<&[u8]> = data.split(|&b| b == b'\n').take(8).collect();
    let peer = "127.0.0.1".parse().expect("ip");
    let (ip, source) = trusted.client_ip(peer, headers.iter().copied(), headers.first().copied());
    if source == AddrSource::Peer {
        assert_eq!(ip, peer);
    }
    for h in &headers {
        let _ = rempart::request::parse_forwarded_ip(h);
    }
});
