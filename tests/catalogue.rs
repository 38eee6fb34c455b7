//! The shipped catalogue against real user-agent strings: no browser may be
//! taken for a bot (a false positive blocks a paying viewer), and the known
//! crawlers must be named (a miss leaks the catalogue).

use std::path::Path;

use rempart::model::{IdentityKind, Purpose, Verification};
use rempart::snapshot::Snapshot;

fn shipped() -> Snapshot {
    Snapshot::load_offline(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rempart.toml"))
        .expect("shipped config")
}

fn identify(snap: &Snapshot, ua: &str, ip: &str) -> rempart::identify::Identity {
    rempart::identify::identify(
        &snap.catalogue,
        &snap.ranges,
        ua.as_bytes(),
        ip.parse().unwrap(),
    )
}

/// Browsers, in-app browsers, TVs and players that viewers of a VOD platform use.
const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 YaBrowser/24.10.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240905.003; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.107 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; ELS-NX9; HMSCore 6.13.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.5735.196 HuaweiBrowser/15.0.4.312 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/478.0.0.38.109;FBBV/640186014;FBDV/iPhone15,2]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 347.0.0.24.92 (iPhone15,2; iOS 17_5; fr_FR; fr)",
    "Mozilla/5.0 (Linux; Android 14; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 XiaoMi/MiuiBrowser/14.19.1",
    "Mozilla/5.0 (SMART-TV; LINUX; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) 94.0.4606.31/7.0 TV Safari/537.36",
    "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/94.0.4606.128 Safari/537.36 WebAppManager",
    "Mozilla/5.0 (Linux; Android 12; BRAVIA 4K VH2 Build/STT1.211025.001.Z4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.230 Mobile Safari/537.36 OPR/46.0.2207.0 OMI/4.24",
    "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.5359.128 Safari/537.36 CrKey/1.56.500000",
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Vivaldi/7.0",
    "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko",
    // Phone makers and apps whose names look like bots to a careless matcher.
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.210 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; CUBOT KINGKONG 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/343.0.695551749 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/490.0.0.46.79;]",
    "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/AP2A.240905.003; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36 GoogleApp/15.45.32.29.arm64",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 LinkedInApp/9.30.4036",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 Snapchat/13.17.0.40",
    // Browsers and apps that name themselves with a word a bot list also uses.
    "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/131.3.1 like Chrome/131.0.6778.135 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 9; AFTKA) AppleWebKit/537.36 (KHTML, like Gecko) Silk/120.3.2 like Chrome/120.0.6099.230 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Whale/4.29.282.14 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/14.9.0",
    "Mozilla/5.0 (Linux; Android 14; SM-G991N Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36;KAKAOTALK 2410940",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323a) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Twitter for iPhone/10.60",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240905.003; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36 trill_360104 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/36.1.4 ByteLocale/fr ByteFullLocale/fr Region/FR BytedanceWebview/d8a21c6",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) discord/1.0.9170 Chrome/128.0.6613.186 Electron/32.2.7 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.41.105 Chrome/130.0.6723.152 Electron/33.2.0 Safari/537.36 AppleWebKit/537.36 Sonic Slack_SSB/4.41.105",
    "Mozilla/5.0 (Windows; U; Windows NT 10.0; en-US; Valve Steam Client/default/1731710030; ) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.183 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 DuckDuckGo/7 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 (Ecosia android@131.0.6778.200)",
    "Mozilla/5.0 (Linux; U; Android 13; en-US; M2101K6G Build/TKQ1.221013.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.80 UCBrowser/13.7.5.1321 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; V2111A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/89.0.4389.72 MQQBrowser/6.2 TBS/046011 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 baiduboxapp/13.58.0.10 (Baidu; P1 13)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edge/44.18363.8131",
    "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/609.4 (KHTML, like Gecko) NF/6.0.3.25.0 NintendoBrowser/5.1.0.32061",
    "Mozilla/5.0 (X11; Linux x86_64; Quest 3) AppleWebKit/537.36 (KHTML, like Gecko) OculusBrowser/35.2.0.4.62 SamsungBrowser/4.0 Chrome/130.0.6723.107 VR Safari/537.36",
    "Mozilla/5.0 (X11; GNU/Linux) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/128.0.6613.119 Chrome/128.0.6613.119 Safari/537.36 Tesla/2024.38.6-b3e0b4ab6a",
    "Mozilla/5.0 (Linux; Tizen 2.3) AppleWebKit/538.1 (KHTML, like Gecko) Version/2.3 TV Safari/538.1 HbbTV/1.2.1 (+DRM;Samsung;SmartTV2016;T-HKMFDEUC-1580.0;;)",
];

/// The guard's whole list: the ones above and the most common real browser
/// user agents of a public data set (`tests/data/browser-user-agents.txt`).
fn browsers() -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/browser-user-agents.txt"),
    )
    .expect("browser list");
    let mut all: Vec<String> = BROWSERS.iter().map(|s| s.to_string()).collect();
    all.extend(
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned),
    );
    all
}

#[test]
fn no_browser_is_taken_for_a_bot() {
    let snap = shipped();
    let all = browsers();
    assert!(all.len() >= 400, "{}", all.len());
    for ua in &all {
        let id = identify(&snap, ua, "203.0.113.10");
        let agent = id.agent.map(|a| snap.catalogue.agent(a).name.clone());
        assert_eq!(id.kind, IdentityKind::Browser, "{ua} matched {agent:?}");
        assert_eq!(
            decide(&snap, ua, "203.0.113.10"),
            rempart::model::Action::Allow,
            "{ua}"
        );
    }
}

/// The proxy's decision for a page request, with fresh behaviour state.
fn decide(snap: &Snapshot, ua: &str, ip: &str) -> rempart::model::Action {
    let (parts, ()) = http::Request::builder()
        .uri("/films/x")
        .header("host", "www.catalogue-demo.example")
        .header("user-agent", ua)
        .header("accept", "text/html")
        .header("accept-language", "fr-FR,fr;q=0.9")
        .body(())
        .unwrap()
        .into_parts();
    let received = rempart::request::Received::of(&parts, ip.parse().unwrap(), 0);
    let read = rempart::request::Request::read(received, &snap.trusted, snap.read);
    let local = rempart::decide::LocalState::new(snap);
    rempart::decide::decide_read(snap, &local.state(), &read).action
}

/// Real crawler user agents, the agent they must be identified as, and its purpose.
const CRAWLERS: &[(&str, &str, Purpose)] = &[
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", "GPTBot", Purpose::AiTraining),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot", "ChatGPT-User", Purpose::AiAssistant),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.0; +https://openai.com/searchbot", "OAI-SearchBot", Purpose::AiSearch),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)", "ClaudeBot", Purpose::AiTraining),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Claude-User/1.0; +Claude-User@anthropic.com)", "Claude-User", Purpose::AiAssistant),
    ("CCBot/2.0 (https://commoncrawl.org/faq/)", "CCBot", Purpose::AiTraining),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)", "PerplexityBot", Purpose::AiSearch),
    ("Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)", "Bytespider", Purpose::AiTraining),
    ("meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)", "Meta-ExternalAgent", Purpose::AiTraining),
    ("Mozilla/5.0 (compatible; Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot) Chrome/119.0.6045.214 Safari/537.36", "Amazonbot", Purpose::AiTraining),
    ("Mozilla/5.0 (compatible; Diffbot/3.0; +http://www.diffbot.com)", "Diffbot", Purpose::AiTraining),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; MistralAI-User/1.0; +https://docs.mistral.ai/robots)", "MistralAI-User", Purpose::AiAssistant),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", Purpose::SearchEngine),
    ("Googlebot-Image/1.0", "Googlebot-Image", Purpose::SearchEngine),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", "bingbot", Purpose::SearchEngine),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", "Applebot", Purpose::SearchEngine),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "YandexBot", Purpose::SearchEngine),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "facebookexternalhit", Purpose::SocialPreview),
    ("Twitterbot/1.0", "Twitterbot", Purpose::SocialPreview),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "AhrefsBot", Purpose::Seo),
    ("Mozilla/5.0 (compatible; archive.org_bot +http://archive.org/details/archive.org_bot)", "archive.org_bot", Purpose::Archiver),
    ("curl/8.5.0", "curl", Purpose::Tool),
    ("python-requests/2.32.3", "python-requests", Purpose::Tool),
    ("Scrapy/2.11.2 (+https://scrapy.org)", "Scrapy", Purpose::Tool),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "HeadlessChrome", Purpose::Tool),
    ("Go-http-client/1.1", "Go-http-client", Purpose::Tool),
];

#[test]
fn known_crawlers_are_named() {
    let snap = shipped();
    for (ua, name, purpose) in CRAWLERS {
        let id = identify(&snap, ua, "203.0.113.10");
        let agent = id.agent.map(|a| snap.catalogue.agent(a));
        assert_eq!(agent.map(|a| a.name.as_str()), Some(*name), "{ua}");
        assert_eq!(id.purpose, Some(*purpose), "{ua}");
    }
}

#[test]
fn every_ai_agent_of_robots_json_is_caught_or_in_robots_txt() {
    let snap = shipped();
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/agents/ai.robots.txt/robots.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let robots = String::from_utf8(snap.pages.robots_txt.body.to_vec()).unwrap();
    let mut caught = 0;
    for name in json.as_object().unwrap().keys() {
        let ua = format!("Mozilla/5.0 (compatible; {name}/1.0)");
        let id = identify(&snap, &ua, "203.0.113.10");
        match id.agent {
            Some(a) => {
                caught += 1;
                let agent = snap.catalogue.agent(a);
                // Only the documented corrections leave the AI purposes.
                if !agent.purpose.is_ai() {
                    assert!(
                        [
                            "Applebot",
                            "facebookexternalhit",
                            "PetalBot",
                            "Scrapy",
                            "Lightpanda"
                        ]
                        .contains(&agent.name.as_str()),
                        "{name} became {:?}",
                        agent.purpose
                    );
                }
            }
            None => {
                let robots_only = snap
                    .catalogue
                    .by_name(name)
                    .map(|a| snap.catalogue.agent(a).robots_only);
                assert_eq!(
                    robots_only,
                    Some(true),
                    "{name} neither matched nor robots-only"
                );
                let line = format!("user-agent: {}\n", name.to_ascii_lowercase());
                assert!(
                    robots.to_ascii_lowercase().contains(&line),
                    "{name} missing from robots.txt"
                );
            }
        }
    }
    assert!(caught >= 150, "{caught}");
}

#[test]
fn verification_against_the_shipped_ranges() {
    let snap = shipped();
    let cases = [
        ("GPTBot/1.2", "132.196.86.1", Verification::Verified),
        ("GPTBot/1.2", "8.8.8.8", Verification::Spoofed),
        ("Googlebot/2.1", "66.249.66.1", Verification::Verified),
        (
            "Googlebot/2.1",
            "2001:4860:4801:10::1",
            Verification::Verified,
        ),
        ("bingbot/2.0", "157.55.39.1", Verification::Verified),
        ("Bytespider", "8.8.8.8", Verification::Unverifiable),
        ("ClaudeBot/1.0", "::ffff:8.8.8.8", Verification::Spoofed),
    ];
    for (ua, ip, expected) in cases {
        assert_eq!(
            identify(&snap, ua, ip).verification,
            expected,
            "{ua} from {ip}"
        );
    }
    assert!(snap.ranges.prefix_count() > 5000);
}

/// Agents whose AI purpose in a list `curated.toml` corrects, with its reason there.
const NOT_AI_BY_CURATION: &[&str] = &[
    "Applebot",
    "facebookexternalhit",
    "PetalBot",
    "Scrapy",
    "Lightpanda",
    "Google-Read-Aloud",
];

fn source_file(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/agents/sources")
            .join(path),
    )
    .unwrap()
}

/// Whether the shipped config catches `ua` as an AI agent: declared with an
/// AI purpose and not let through, or a documented exception.
fn caught_as_ai(snap: &Snapshot, ua: &str, robots: &str) -> Result<(), String> {
    let id = identify(snap, ua, "203.0.113.10");
    let agent = id.agent.map(|a| snap.catalogue.agent(a));
    if let Some(a) = agent {
        if NOT_AI_BY_CURATION.contains(&a.name.as_str()) {
            return Ok(());
        }
    }
    let action = decide(snap, ua, "203.0.113.10");
    if id.kind == IdentityKind::Declared
        && id.purpose.is_some_and(Purpose::is_ai)
        && action != rempart::model::Action::Allow
    {
        return Ok(());
    }
    Err(format!(
        "{ua}: {:?} agent {:?} purpose {:?} action {action:?}",
        id.kind,
        agent.map(|a| &a.name),
        id.purpose
    ))
    .or_else(|e| {
        // A robots.txt-only token (Google-Extended) is no crawler of its own:
        // it must be in the served robots.txt.
        let robots_only = snap.catalogue.agents().iter().any(|a| {
            a.robots_only
                && rempart::catalog::tokens::names(&a.name, ua)
                && robots.contains(&format!("user-agent: {}\n", a.name.to_ascii_lowercase()))
        });
        if robots_only {
            Ok(())
        } else {
            Err(e)
        }
    })
}

#[test]
fn every_ai_agent_of_every_list_is_caught() {
    let snap = shipped();
    let robots = String::from_utf8(snap.pages.robots_txt.body.to_vec())
        .unwrap()
        .to_ascii_lowercase();
    let synthetic = |name: &str| format!("Mozilla/5.0 (compatible; {name}/1.0)");
    let mut misses = Vec::new();
    let mut counts = Vec::new();

    // crawler-user-agents: every real user agent of every AI entry.
    let cua: Vec<serde_json::Value> =
        serde_json::from_str(&source_file("crawler-user-agents/crawler-user-agents.json")).unwrap();
    let ai: Vec<&serde_json::Value> = cua
        .iter()
        .filter(|e| {
            e["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "ai-crawler"))
        })
        .collect();
    let mut instances = 0;
    for e in &ai {
        for ua in e["instances"].as_array().unwrap() {
            instances += 1;
            misses.extend(caught_as_ai(&snap, ua.as_str().unwrap(), &robots).err());
        }
    }
    counts.push(("crawler-user-agents", ai.len(), instances));

    // device-detector: a user agent from each AI entry's literals (its name where the pattern has none).
    let dd: Vec<serde_yaml::Value> =
        serde_yaml::from_str(&source_file("device-detector/bots.yml")).unwrap();
    let ai: Vec<&serde_yaml::Value> = dd
        .iter()
        .filter(|e| e["category"].as_str().is_some_and(|c| c.starts_with("AI ")))
        .collect();
    let mut uas = 0;
    for e in &ai {
        let names = rempart::catalog::tokens::literals(e["regex"].as_str().unwrap())
            .unwrap_or_else(|| vec![e["name"].as_str().unwrap().to_owned()]);
        for name in names {
            uas += 1;
            misses.extend(caught_as_ai(&snap, &synthetic(&name), &robots).err());
        }
    }
    counts.push(("device-detector", ai.len(), uas));

    // ai-crawler-index: its user-agent token of each AI category.
    let aci: serde_json::Value =
        serde_json::from_str(&source_file("ai-crawler-index/data.json")).unwrap();
    let ai_categories = aci["ai_categories"].as_array().unwrap();
    let ai: Vec<&serde_json::Value> = aci["crawlers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| ai_categories.contains(&c["category"]))
        .collect();
    for c in &ai {
        // Control tokens have no user agent of their own: `ua` says so, `robots_token` names them.
        let ua = c["ua"].as_str().unwrap();
        let token = if ua.starts_with('(') {
            c["robots_token"].as_str().unwrap()
        } else {
            ua
        };
        misses.extend(caught_as_ai(&snap, &synthetic(token), &robots).err());
    }
    counts.push(("ai-crawler-index", ai.len(), ai.len()));

    eprintln!("AI entries, user agents tried: {counts:?}");
    assert!(
        misses.is_empty(),
        "{} missed:\n{}",
        misses.len(),
        misses.join("\n")
    );
}

#[test]
fn bots_that_no_list_names_are_declared_by_what_they_say() {
    let snap = shipped();
    let cases: &[(&str, Purpose, rempart::model::Action)] = &[
        // Names an AI operator's domain: its purpose, so the licensing offer.
        ("Mozilla/5.0 (compatible; NovelThing/0.1; +https://chatgpt.com/novelthing)", Purpose::AiTraining, rempart::model::Action::Offer),
        ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Fresh-Agent/1.0; fresh-agent@anthropic.com)", Purpose::AiTraining, rempart::model::Action::Offer),
        ("Answerer/2.0 (+https://docs.perplexity.ai/new)", Purpose::AiSearch, rempart::model::Action::Offer),
        // Calls itself a bot, or gives a contact URL: other-bot, let through by the shipped policy.
        ("Mozilla/5.0 (compatible; ZqxAcmeBot/1.0)", Purpose::OtherBot, rempart::model::Action::Allow),
        ("zqx-crawler/0.3", Purpose::OtherBot, rempart::model::Action::Allow),
        ("ZqxSpider/1.0", Purpose::OtherBot, rempart::model::Action::Allow),
        ("zqx fetcher", Purpose::OtherBot, rempart::model::Action::Allow),
        ("Mozilla/5.0 (compatible; Zqx/2.0; +http://zqx.example/about)", Purpose::OtherBot, rempart::model::Action::Allow),
    ];
    for (ua, purpose, action) in cases {
        let id = identify(&snap, ua, "203.0.113.10");
        assert_eq!(id.agent, None, "{ua}: no list names it");
        assert_eq!(
            (id.kind, id.purpose, id.verification),
            (
                IdentityKind::Declared,
                Some(*purpose),
                Verification::Unverifiable
            ),
            "{ua}"
        );
        assert_eq!(id.agent_name(&snap.catalogue), Some("unknown-bot"));
        assert_eq!(decide(&snap, ua, "203.0.113.10"), *action, "{ua}");
    }
}
