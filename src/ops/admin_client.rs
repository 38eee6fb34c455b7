//! The command line's client of the admin listener: `rempart health` and
//! `rempart reload`. One plain HTTP/1.1 request over loopback TCP, no client
//! library: the admin listener is rempart's own and speaks HTTP/1.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// An admin answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Sends one request to the admin listener and reads the whole answer.
pub fn request(
    admin: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_secs(2))
        .with_context(|| format!("{admin}: not answering"))?;
    stream.set_read_timeout(Some(timeout))?;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {admin}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("{admin}: no answer to {method} {path}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{admin}: not an HTTP answer"))?;
    Ok(Answer {
        status,
        body: body.to_owned(),
    })
}

/// Where the admin listener of a config file is, and its token: read from
/// `[admin]` alone, so that `rempart reload` can still ask (and report the
/// refusal) when the rest of the file is what is broken.
pub fn admin_of(config: &Path) -> anyhow::Result<(SocketAddr, Option<String>)> {
    #[derive(Deserialize, Default)]
    struct File {
        #[serde(default)]
        admin: Admin,
    }
    #[derive(Deserialize)]
    #[serde(default)]
    struct Admin {
        listen: String,
        token_file: Option<PathBuf>,
    }
    impl Default for Admin {
        fn default() -> Self {
            Admin {
                listen: crate::config::DEFAULT_ADMIN.to_owned(),
                token_file: None,
            }
        }
    }
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("{}: cannot read", config.display()))?;
    let file: File = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: [admin] cannot be read: {e}", config.display()))?;
    let addr =
        file.admin.listen.parse().with_context(|| {
            format!("{}: admin.listen {:?}", config.display(), file.admin.listen)
        })?;
    let token = match file.admin.token_file {
        Some(p) => {
            let p = if p.is_relative() {
                config.parent().unwrap_or(Path::new(".")).join(p)
            } else {
                p
            };
            let t = std::fs::read_to_string(&p)
                .with_context(|| format!("admin.token_file {}: cannot read", p.display()))?;
            Some(t.trim().to_owned())
        }
        None => None,
    };
    Ok((addr, token))
}
