//! The documents generated from the reservation model: TDMRep's
//! `tdmrep.json`, the TDM policy as ODRL JSON-LD, the RSL `license.xml`, and
//! the lines that robots.txt carries (`Content-Usage`, `Content-Signal`,
//! `License`).

use serde_json::json;

use crate::config::RightsHolder;
use crate::optout::reservation::{Location, Reservation, Usage};

/// `/.well-known/tdmrep.json`: a JSON array, most specific location first.
pub fn tdmrep_json(r: &Reservation) -> String {
    let entries: Vec<serde_json::Value> = r
        .locations
        .iter()
        .map(|l| {
            if l.tdm_reserved {
                json!({"location": l.pattern, "tdm-reservation": 1, "tdm-policy": r.policy_url})
            } else {
                json!({"location": l.pattern, "tdm-reservation": 0})
            }
        })
        .collect();
    serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".into())
}

/// The TDM policy: an ODRL `Offer` under the TDMRep profile. Mining needs the
/// rights holder's consent, and is compensated where a price is set.
pub fn tdm_policy(r: &Reservation, holder: &RightsHolder) -> String {
    let price = r
        .locations
        .iter()
        .filter_map(|l| l.price_eur)
        .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.min(p))));
    let mut duties = vec![json!({"action": "obtainConsent"})];
    if let Some(p) = price {
        duties.push(json!({
            "action": "compensate",
            "refinement": [{"leftOperand": "payAmount", "operator": "eq", "rightOperand": p, "unit": "http://dbpedia.org/resource/Euro"}]
        }));
    }
    let policy = json!({
        "@context": ["http://www.w3.org/ns/odrl.jsonld", {"tdm": "http://www.w3.org/ns/tdmrep#", "vcard": "http://www.w3.org/2006/vcard/ns#", "dct": "http://purl.org/dc/terms/"}],
        "@type": "Offer",
        "profile": "http://www.w3.org/ns/tdmrep",
        "uid": r.policy_url,
        // The clause of the site's terms is the reservation in words; this
        // policy is derived from it (Dublin Core `source`, policy metadata
        // as the ODRL information model allows).
        "dct:source": {"@id": r.clause_url},
        "assigner": {
            "uid": holder.terms_url,
            "@type": ["Party", "vcard:Organization"],
            "vcard:fn": holder.name,
            "vcard:hasEmail": holder.contact,
            "vcard:url": holder.terms_url,
        },
        "permission": [{
            "target": r.base_url,
            "action": "tdm:mine",
            "duty": duties,
        }],
    });
    serde_json::to_string_pretty(&policy).unwrap_or_else(|_| "{}".into())
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn usages(list: &[Usage]) -> String {
    list.iter()
        .map(|u| u.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// RSL 1.0 `license.xml`: one `<content>` per location, naming the licence
/// server when the config has one.
pub fn license_xml(r: &Reservation, holder: &RightsHolder) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rsl xmlns=\"https://rslstandard.org/rsl\">\n",
    );
    for l in &r.locations {
        let server = r
            .license_server
            .as_deref()
            .map(|s| format!(" server=\"{}\"", xml_escape(s)))
            .unwrap_or_default();
        out.push_str(&format!(
            "  <content url=\"{}\"{server}>\n    <license>\n",
            xml_escape(&l.pattern)
        ));
        let permits = if l.tdm_reserved || !l.allow.is_empty() {
            usages(&l.allow)
        } else {
            "all".to_owned()
        };
        if !permits.is_empty() {
            out.push_str(&format!(
                "      <permits type=\"usage\">{permits}</permits>\n"
            ));
        }
        let refused = refused(l);
        if !refused.is_empty() {
            out.push_str(&format!(
                "      <prohibits type=\"usage\">{}</prohibits>\n",
                usages(&refused)
            ));
        }
        if let Some(p) = l.price_eur {
            out.push_str(&format!(
                "      <payment type=\"crawl\">\n        <amount currency=\"EUR\">{p}</amount>\n      </payment>\n"
            ));
        }
        out.push_str(&format!(
            "      <legal type=\"terms\">{}</legal>\n      <legal type=\"contact\">{}</legal>\n",
            xml_escape(&holder.terms_url),
            xml_escape(&holder.contact)
        ));
        let clause = xml_escape(&r.clause_url);
        out.push_str(&format!("      <legal type=\"terms\">{clause}</legal>\n"));
        out.push_str("    </license>\n  </content>\n");
    }
    out.push_str("</rsl>\n");
    out
}

/// What a location refuses: what it says, and for a reserved location every
/// AI usage it does not explicitly allow.
pub fn refused(l: &Location) -> Vec<Usage> {
    let mut out = l.refuse.clone();
    if l.tdm_reserved {
        for u in [Usage::AiTrain, Usage::AiInput, Usage::AiIndex] {
            if !l.allow.contains(&u) && !out.contains(&u) {
                out.push(u);
            }
        }
    }
    out.sort();
    out
}

/// The robots.txt lines: a `License:` line, then per location its
/// `Content-Usage` (AIPREF, with its path) and, for the catch-all location,
/// the `Content-Signal` line.
pub fn robots_lines(r: &Reservation) -> (String, String) {
    let header = format!("License: {}\n", r.license_url);
    let mut group = String::new();
    for l in &r.locations {
        if let Some(cu) = l.content_usage() {
            let path = l.pattern.trim_end_matches('*');
            if path == "/" {
                group.push_str(&format!("Content-Usage: {cu}\n"));
            } else {
                group.push_str(&format!("Content-Usage: {path} {cu}\n"));
            }
        }
    }
    if let Some(general) = r
        .locations
        .iter()
        .rev()
        .find(|l| l.pattern == "/*" || l.pattern == "/")
    {
        let signal = general.content_signal();
        if !signal.is_empty() {
            group.push_str(&format!("Content-Signal: {signal}\n"));
        }
    }
    (header, group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optout::reservation::ReservationSpec;

    fn model() -> Reservation {
        let spec: ReservationSpec = toml::from_str(
            r#"
            base_url = "https://www.example.com"
            [[location]]
            path = "/*"
            tdm_reserved = true
            allow = ["search"]
            refuse = ["ai-train"]
            price_eur = 0.01
            use = "reference"
            [[location]]
            path = "/trailers/*"
            tdm_reserved = false
            allow = ["search", "ai-input"]
            "#,
        )
        .unwrap();
        Reservation::compile(&spec).unwrap()
    }

    fn holder() -> RightsHolder {
        RightsHolder {
            name: "A & B <Films>".into(),
            contact: "licences@example.com".into(),
            terms_url: "https://www.example.com/terms?a=1&b=2".into(),
            offer_path: "/ai-licensing".into(),
        }
    }

    #[test]
    fn tdmrep_lists_most_specific_first() {
        let v: serde_json::Value = serde_json::from_str(&tdmrep_json(&model())).unwrap();
        assert_eq!(v[0]["location"], "/trailers/*");
        assert_eq!(v[0]["tdm-reservation"], 0);
        assert!(v[0].get("tdm-policy").is_none());
        assert_eq!(v[1]["location"], "/*");
        assert_eq!(v[1]["tdm-reservation"], 1);
        assert_eq!(
            v[1]["tdm-policy"],
            "https://www.example.com/.well-known/tdm-policy.json"
        );
    }

    #[test]
    fn policy_is_an_odrl_offer() {
        let v: serde_json::Value = serde_json::from_str(&tdm_policy(&model(), &holder())).unwrap();
        assert_eq!(v["@type"], "Offer");
        assert_eq!(v["profile"], "http://www.w3.org/ns/tdmrep");
        assert_eq!(v["permission"][0]["action"], "tdm:mine");
        assert_eq!(v["permission"][0]["duty"][1]["action"], "compensate");
        assert_eq!(v["assigner"]["vcard:fn"], "A & B <Films>");
        assert_eq!(
            v["dct:source"]["@id"],
            "https://www.example.com/tdm-reservation"
        );
    }

    #[test]
    fn license_xml_escapes_and_lists_usages() {
        let x = license_xml(&model(), &holder());
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rsl xmlns=\"https://rslstandard.org/rsl\">"));
        assert!(x.contains("<content url=\"/*\">"));
        assert!(
            x.contains("<prohibits type=\"usage\">ai-train ai-input ai-index</prohibits>"),
            "{x}"
        );
        assert!(
            x.contains("<permits type=\"usage\">search ai-input</permits>"),
            "{x}"
        );
        assert!(x.contains("<amount currency=\"EUR\">0.01</amount>"));
        assert!(x.contains("terms?a=1&amp;b=2"));
        assert!(x.contains("<legal type=\"terms\">https://www.example.com/tdm-reservation</legal>"));
        assert!(!x.contains("a=1&b"));
    }

    #[test]
    fn robots_lines() {
        let (header, group) = super::robots_lines(&model());
        assert_eq!(header, "License: https://www.example.com/license.xml\n");
        assert_eq!(
            group,
            "Content-Usage: /trailers/ search=y\nContent-Usage: train-ai=n, search=y\nContent-Signal: search=yes, ai-input=no, ai-train=no, use=reference\n"
        );
    }

    /// The lines parsed back as a crawler would: each `Content-Usage` value
    /// a structured-field dictionary after its optional path, and the
    /// `Content-Signal` pairs with `use` among them.
    #[test]
    fn robots_lines_parse_back() {
        let (_, group) = super::robots_lines(&model());
        let mut usages = Vec::new();
        for line in group.lines() {
            let (key, value) = line.split_once(':').expect("key: value");
            let value = value.trim();
            match key {
                "Content-Usage" => {
                    let path = crate::optout::robots::content_usage_path(line).expect("a path");
                    let prefs = value.strip_prefix(path).unwrap_or(value).trim();
                    let dict: sfv::Dictionary =
                        sfv::Parser::new(prefs).parse_dictionary().expect("sfv");
                    let keys: Vec<String> = dict.keys().map(|k| k.as_str().to_owned()).collect();
                    usages.push((path.to_owned(), keys));
                }
                "Content-Signal" => {
                    let pairs: Vec<(&str, &str)> = value
                        .split(',')
                        .filter_map(|p| p.trim().split_once('='))
                        .collect();
                    assert!(pairs.contains(&("use", "reference")), "{pairs:?}");
                    assert!(pairs.contains(&("ai-train", "no")), "{pairs:?}");
                }
                other => panic!("unexpected line {other}"),
            }
        }
        assert_eq!(
            usages,
            [
                ("/trailers/".to_owned(), vec!["search".to_owned()]),
                (
                    "/".to_owned(),
                    vec!["train-ai".to_owned(), "search".to_owned()]
                ),
            ],
            "most specific first"
        );
    }

    #[test]
    fn license_xml_names_the_licence_server() {
        let mut spec: ReservationSpec = toml::from_str(
            "base_url = \"https://www.example.com\"\nlicense_server = \"https://licence.example.com/rsl\"\n[[location]]\npath = \"/*\"\ntdm_reserved = true\nprice_eur = 0.02\n",
        )
        .unwrap();
        let x = license_xml(&Reservation::compile(&spec).unwrap(), &holder());
        assert!(
            x.contains("<content url=\"/*\" server=\"https://licence.example.com/rsl\">"),
            "{x}"
        );
        assert!(x.contains("<payment type=\"crawl\">"), "{x}");
        assert!(x.contains("<prohibits type=\"usage\">ai-train ai-input ai-index</prohibits>"));
        // Without one, no server attribute at all.
        assert!(!license_xml(&model(), &holder()).contains("server="));
        // A licence server must be HTTPS.
        spec.license_server = Some("http://licence.example.com".into());
        let e = Reservation::compile(&spec).unwrap_err();
        assert_eq!(e.key, "license_server");
    }
}
