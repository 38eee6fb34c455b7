//! The built-in demo origin: a small film catalogue served from a directory
//! of static files (`config/demo-site/`), so that `rempart demo` and the
//! shipped config work out of the box with nothing else running.
//!
//! The files are read once at start into memory; requests never touch disk.
//! `films/x.html` also answers `/films/x`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

/// The demo site, loaded in memory.
pub struct DemoSite {
    files: HashMap<String, (&'static str, Bytes)>,
}

/// The demo directory cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot load the demo site: {source}")]
pub struct DemoError {
    path: PathBuf,
    source: std::io::Error,
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        _ => "application/octet-stream",
    }
}

impl DemoSite {
    /// Loads every file under `root`; `index.html` also answers its directory.
    pub fn load(root: &Path) -> Result<Self, DemoError> {
        let mut files = HashMap::new();
        let mut stack = vec![root.to_owned()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|source| DemoError {
                path: dir.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| DemoError {
                    path: dir.clone(),
                    source,
                })?;
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let body = std::fs::read(&path).map_err(|source| DemoError {
                    path: path.clone(),
                    source,
                })?;
                let Ok(rel) = path.strip_prefix(root) else {
                    continue;
                };
                let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
                let value = (content_type(&path), Bytes::from(body));
                if let Some(pretty) = url.strip_suffix(".html") {
                    files.insert(pretty.to_owned(), value.clone());
                }
                if let Some(dir_url) = url.strip_suffix("index.html") {
                    files.insert(dir_url.to_owned(), value.clone());
                    if dir_url.len() > 1 {
                        files.insert(dir_url.trim_end_matches('/').to_owned(), value.clone());
                    }
                }
                files.insert(url, value);
            }
        }
        Ok(Self { files })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[async_trait]
impl ServeHttp for DemoSite {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path();
        let (status, ctype, body) = match self.files.get(path) {
            Some((ctype, body)) => (StatusCode::OK, *ctype, body.to_vec()),
            None => (
                StatusCode::NOT_FOUND,
                "text/html; charset=utf-8",
                b"<!doctype html><title>404</title><h1>Not found</h1>\n".to_vec(),
            ),
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(ctype),
        );
        let len = resp.body().len();
        resp.headers_mut()
            .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
        resp.headers_mut()
            .insert("x-demo-origin", http::HeaderValue::from_static("rempart"));
        resp
    }
}
