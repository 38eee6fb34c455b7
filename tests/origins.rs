//! Origins: several, balanced round robin; an address that refuses
//! connections is taken out and its requests retried on another; names
//! resolved at load and by `rempart check`.

mod common;

use common::*;

const RULES: &str = "[[rules]]\nname = \"gpt\"\nagent = [\"GPTBot\"]\naction = \"offer\"\n\n[behaviour]\nenabled = false\n\n[reload]\nwatch = false\n";

fn with_origins(urls: &[String]) -> impl Fn(String) -> String {
    let list = urls
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    move |text: String| {
        let start = text.find("\nupstream = ").expect("upstream line") + 1;
        let end = start + text[start..].find('\n').expect("end of line");
        format!("{}upstream = [{list}]{}", &text[..start], &text[end..])
    }
}

#[test]
fn two_origins_share_the_requests_and_a_dead_one_is_skipped() {
    let a = Origin::start();
    let b = Origin::start();
    let edit = with_origins(&[a.url(), b.url()]);
    let proxy = Proxy::start_edited(&a.url(), "", RULES, &[], &edit);
    for _ in 0..20 {
        let r = proxy.browse("/films/x");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, ORIGIN_BODY);
    }
    assert_eq!((a.count(), b.count()), (10, 10), "round robin");
    // A third origin address that refuses connections: every request still
    // succeeds (retried on another address), and the dead one is tried once,
    // then left out for the fail timeout.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let edit = with_origins(&[a.url(), dead.clone(), b.url()]);
    let proxy = Proxy::start_edited(&a.url(), "", RULES, &[], &edit);
    let (before_a, before_b) = (a.count(), b.count());
    for _ in 0..30 {
        assert_eq!(proxy.browse("/films/y").status, 200);
    }
    assert_eq!(
        a.count() + b.count() - before_a - before_b,
        30,
        "every request reached a live origin"
    );
    assert_eq!(
        proxy.metric(r#"rempart_upstream_errors_total{stage="connect"}"#),
        1.0,
        "the dead address was tried once, then left out"
    );
    assert_eq!(
        proxy.metric(r#"rempart_http_responses_total{action="allow",status="200"}"#),
        30.0
    );
}

#[test]
fn an_origin_by_name_is_resolved_and_its_unreachable_addresses_left_out() {
    // `localhost` resolves to 127.0.0.1 and often ::1 too; the origin only
    // listens on the first: the other address fails once and is left out.
    let a = Origin::start();
    let url = format!("http://localhost:{}", a.addr.port());
    let proxy = Proxy::start_with(&url, "", RULES);
    for _ in 0..10 {
        assert_eq!(proxy.browse("/films/z").status, 200);
    }
    assert_eq!(a.count(), 10);
    assert!(proxy.metric(r#"rempart_upstream_errors_total{stage="connect"}"#) <= 1.0);
}

#[test]
fn check_resolves_each_origin_and_names_the_one_that_fails() {
    let a = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &a.url(), free_port(), free_port(), "", RULES);
    let text = std::fs::read_to_string(&config).unwrap();
    let bad =
        with_origins(&[a.url(), "http://no-such-origin.invalid:8080".to_owned()])(text.clone());
    std::fs::write(&config, &bad).unwrap();
    let path = config.to_str().unwrap();
    let (code, out, err) = run_cli(&["check", "--config", path], None);
    assert_eq!(code, 1, "{out}{err}");
    let line = bad
        .lines()
        .position(|l| l.starts_with("upstream = ["))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("rempart.toml:{line}:")), "{err}");
    assert!(
        err.contains("server.upstream[1]") && err.contains("no-such-origin.invalid"),
        "{err}"
    );
    let (code, _, err) = run_cli(&["check", "--config", path, "--offline"], None);
    assert_eq!(code, 0, "--offline does not resolve: {err}");
    std::fs::write(&config, with_origins(&[a.url()])(text)).unwrap();
    let (code, out, err) = run_cli(&["check", "--config", path], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("origin {}: {}", a.url(), a.addr)),
        "{out}"
    );
    // A list with the demo and another origin, or an origin twice: refused.
    for (urls, says) in [
        (
            vec!["builtin:demo".to_owned(), a.url()],
            "[0]`: builtin:demo cannot be balanced",
        ),
        (vec![a.url(), a.url()], "[1]`: \"http"),
    ] {
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, with_origins(&urls)(text)).unwrap();
        let (code, _, err) = run_cli(&["check", "--config", path, "--offline"], None);
        assert_eq!(code, 1, "{urls:?}");
        assert!(err.contains(&format!("server.upstream{says}")), "{err}");
    }
}
