//! Network context: the shipped IP-to-ASN data is what the import gives, the
//! import command works offline on the package's format, and a browser from
//! a hosting network gets the `hosting-network` signal and its ASN in the
//! ledger (through `X-Forwarded-For` from a trusted proxy) while the same
//! browser from a residential address does not, and is let through either way.

mod common;

use std::io::Read;

use common::*;
use sha2::{Digest, Sha256};

/// An address of Amazon's AS16509 (hosting) and one of Orange's AS3215
/// (residential), in the shipped data.
const AWS_IP: &str = "3.5.140.2";
const ORANGE_IP: &str = "90.12.34.56";

fn gunzip(path: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("data file"))
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

/// The data lines of a gzipped output file (its `#` header left out).
fn data_lines(path: &std::path::Path) -> Vec<String> {
    String::from_utf8(gunzip(path))
        .expect("utf-8")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_shipped_data_is_what_provenance_says_the_import_produced() {
    let dir = repo().join("config/network");
    let provenance = std::fs::read_to_string(dir.join("PROVENANCE")).expect("PROVENANCE");
    let sums: Vec<(&str, &str)> = provenance
        .lines()
        .filter_map(|l| l.strip_prefix("content-sha256 "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    assert_eq!(sums.len(), 2, "{sums:?}");
    for (file, sum) in sums {
        let got = hex::encode(Sha256::digest(gunzip(&dir.join(file))));
        assert_eq!(got, sum, "{file} differs from its PROVENANCE checksum");
    }
}

#[test]
fn import_turns_the_package_csv_into_the_shipped_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v4 = dir.path().join("asn-ipv4.csv");
    let v6 = dir.path().join("asn-ipv6.csv");
    std::fs::write(
        &v4,
        "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n\
         3.5.140.0,3.5.143.255,16509,\"Amazon.com, Inc.\"\n\
         3.5.144.0,3.5.151.255,16509,\"Amazon.com, Inc.\"\n",
    )
    .expect("write");
    std::fs::write(
        &v6,
        "2a01:cb00::,2a01:cb3f:ffff:ffff:ffff:ffff:ffff:ffff,3215,Orange S.A.\n",
    )
    .expect("write");
    let out = dir.path().join("out");
    let args = [
        "network",
        "import",
        v4.to_str().expect("path"),
        v6.to_str().expect("path"),
        "-o",
        out.to_str().expect("path"),
    ];
    let (code, stdout, stderr) = run_cli(&args, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("2 IPv4 and 1 IPv6 ranges, 3 AS names"),
        "{stdout}"
    );
    assert_eq!(
        data_lines(&out.join("asn-ranges.csv.gz")),
        [
            "1.0.0.0,1.0.0.255,13335",
            "3.5.140.0,3.5.151.255,16509",
            "2a01:cb00::,2a01:cb3f:ffff:ffff:ffff:ffff:ffff:ffff,3215"
        ]
    );
    assert_eq!(
        data_lines(&out.join("as-names.csv.gz")),
        [
            "3215,Orange S.A.",
            "13335,\"Cloudflare, Inc.\"",
            "16509,\"Amazon.com, Inc.\""
        ]
    );
    let sum = hex::encode(Sha256::digest(gunzip(&out.join("asn-ranges.csv.gz"))));
    assert!(
        stdout.contains(&format!("content-sha256 asn-ranges.csv.gz {sum}")),
        "{stdout}"
    );
    // Same input, same bytes.
    let first = std::fs::read(out.join("asn-ranges.csv.gz")).expect("read");
    assert_eq!(run_cli(&args, None).0, 0);
    assert_eq!(
        first,
        std::fs::read(out.join("asn-ranges.csv.gz")).expect("read")
    );
}

/// The shipped config's `[network]` section, its paths made absolute.
fn shipped_network_section() -> String {
    let text = std::fs::read_to_string(repo().join("config/rempart.toml")).expect("config");
    let start = text
        .find("[network]")
        .expect("[network] in the shipped config");
    let end = start + text[start..].find("\n\n").expect("end of section");
    let cfg = repo().join("config");
    text[start..end].replace("\"network/", &format!("\"{}/network/", cfg.display()))
}

/// The shipped rules behind a trusted proxy on loopback, with this
/// `[network]` section. A log-only rule first records every browser request
/// in the ledger, so that every verdict can be read; the shipped rules decide.
fn start_watching_browsers(origin: &Origin, network: &str) -> Proxy {
    let rules = format!(
        "[[rules]]\nname = \"watch-browsers\"\nidentity = [\"browser\"]\naction = \"block\"\nmode = \"log-only\"\n\n{}",
        default_rules()
    );
    Proxy::start_edited(
        &origin.url(),
        "trusted_proxies = [\"127.0.0.1/32\"]",
        &rules,
        &[],
        &|text| text.replace("[rights_holder]", &format!("{network}\n\n[rights_holder]")),
    )
}

#[test]
fn a_browser_from_a_hosting_network_is_challenged_and_one_from_home_is_not() {
    let origin = Origin::start();
    let proxy = start_watching_browsers(&origin, &shipped_network_section());
    let browser = |ip: &'static str| {
        [
            ("User-Agent", CHROME),
            BROWSER_ACCEPT,
            BROWSER_LANGUAGE,
            ("X-Forwarded-For", ip),
        ]
    };
    // The shipped policy sends a browser user agent from a hosting network
    // to the challenge (which a real browser passes by itself).
    let from_aws = proxy.get("/films/a", &browser(AWS_IP));
    assert_eq!(from_aws.status, 403, "{}", from_aws.body);
    assert!(from_aws.body.contains("/.well-known/rempart/challenge"));
    let from_home = proxy.get("/films/b", &browser(ORANGE_IP));
    assert_eq!(from_home.status, 200);
    assert_eq!(origin.last().expect("origin saw it").path, "/films/b");
    // IPv6: an address of Amazon's AS14618.
    let from_aws_v6 = proxy.get("/films/c", &browser("2600:1f18::1"));
    assert_eq!(from_aws_v6.status, 403);
    assert_eq!(origin.count(), 1);

    let all = proxy.wait_records(3);
    let records = requests(&all);
    assert_eq!(records.len(), 3, "{all:?}");
    let aws = records
        .iter()
        .find(|r| r["path"] == "/films/a")
        .expect("record");
    let signals = aws["signals"].as_array().expect("signals");
    assert!(signals.iter().any(|s| s == "hosting-network"), "{aws}");
    assert_eq!(aws["asn"], 16509);
    assert_eq!(aws["as_org"], "Amazon.com, Inc.");
    assert_eq!(aws["hosting"], true);
    assert_eq!(aws["decision"], "challenge");
    assert_eq!(aws["rule"], "suspicious-browsers");
    assert!(aws["score"].as_u64().expect("score") < 60, "{aws}");
    let home = records
        .iter()
        .find(|r| r["path"] == "/films/b")
        .expect("record");
    let signals = home["signals"].as_array().expect("signals");
    assert!(!signals.iter().any(|s| s == "hosting-network"), "{home}");
    assert_eq!(home["asn"], 3215);
    assert_eq!(home["as_org"], "Orange S.A.");
    assert!(home.get("hosting").is_none(), "{home}");
    let v6 = records
        .iter()
        .find(|r| r["path"] == "/films/c")
        .expect("record");
    assert_eq!((&v6["asn"], &v6["hosting"]), (&14618.into(), &true.into()));

    assert_eq!(
        proxy.metric("rempart_hosting_requests_total{action=\"challenge\"}"),
        2.0
    );
    assert_eq!(
        proxy.metric("rempart_behaviour_signals_total{signal=\"hosting-network\"}"),
        2.0
    );
    assert!(proxy.metric("rempart_network_ranges") > 500_000.0);
}

#[test]
fn classify_prints_the_asn() {
    let (code, stdout, stderr) = run_cli(
        &[
            "classify", "--ua", CHROME, "--ip", AWS_IP, "--path", "/films/a",
        ],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert_eq!(line["asn"], 16509, "{line}");
    assert_eq!(line["as_org"], "Amazon.com, Inc.");
    assert_eq!(line["hosting"], true);
    assert!(
        line["signals"]
            .as_array()
            .expect("signals")
            .iter()
            .any(|s| s == "hosting-network"),
        "{line}"
    );
    // The shipped policy's answer to a browser user agent from there.
    assert_eq!(line["action"], "challenge");
}

#[test]
fn a_missing_data_file_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped = std::fs::read_to_string(repo().join("config/rempart.toml")).expect("config");
    let cfg = repo().join("config");
    let text = shipped
        .replace("\"agents/", &format!("\"{}/agents/", cfg.display()))
        .replace("\"ipranges", &format!("\"{}/ipranges", cfg.display()))
        .replace("\"templates", &format!("\"{}/templates", cfg.display()))
        .replace("\"network/as", &format!("\"{}/network/as", cfg.display()))
        .replace("\"network/hosting-asns.csv\"", "\"network/absent.csv\"");
    let path = dir.path().join("rempart.toml");
    std::fs::write(&path, text).expect("write");
    let (code, _, stderr) = run_cli(&["check", "--config", path.to_str().expect("path")], None);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("network/absent.csv: cannot read network data"),
        "{stderr}"
    );
}

fn post(url: &str) -> (u16, String) {
    match ureq::post(url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

#[test]
fn a_reload_takes_a_new_hosting_list_and_refuses_a_broken_one() {
    let origin = Origin::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let hosting = dir.path().join("hosting-asns.csv");
    let shipped = repo().join("config/network/hosting-asns.csv");
    std::fs::copy(&shipped, &hosting).expect("copy");
    let network = shipped_network_section().replace(
        &format!("\"{}\"", shipped.display()),
        &format!("\"{}\"", hosting.display()),
    );
    assert!(
        network.contains(&hosting.display().to_string()),
        "{network}"
    );
    let proxy = start_watching_browsers(&origin, &network);
    let get = |path: &str, status: u16| {
        // A browser's own headers: only the network is in question here.
        let headers = [
            ("User-Agent", CHROME),
            BROWSER_ACCEPT,
            BROWSER_LANGUAGE,
            ("X-Forwarded-For", AWS_IP),
        ];
        assert_eq!(proxy.get(path, &headers).status, status, "{path}");
    };
    // A hosting network: the challenge.
    get("/films/before", 403);
    // Amazon taken off the list: the same address is no longer a hosting network.
    let text = std::fs::read_to_string(&hosting).expect("read");
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("16509,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&hosting, without).expect("write");
    let reload = format!("http://127.0.0.1:{}/reload", proxy.admin);
    let (code, body) = post(&reload);
    // The file watch may have reloaded first.
    assert!(
        code == 200 && (body.contains("loaded") || body.contains("unchanged")),
        "{code} {body}"
    );
    get("/films/after", 200);
    let all = proxy.wait_records(2);
    let records = requests(&all);
    let by_path = |p: &str| *records.iter().find(|r| r["path"] == p).expect("record");
    assert_eq!(by_path("/films/before")["hosting"], true);
    let after = by_path("/films/after");
    assert_eq!(after["asn"], 16509);
    assert!(after.get("hosting").is_none(), "{after}");
    // A broken list is refused and the running table stays.
    std::fs::write(&hosting, "16509,Amazon\n").expect("write");
    let (code, body) = post(&reload);
    assert_ne!(code, 200, "{body}");
    assert!(body.contains("hosting-asns.csv:1"), "{body}");
    assert_eq!(
        proxy
            .get(
                "/films/still",
                &[("User-Agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE]
            )
            .status,
        200
    );
}
