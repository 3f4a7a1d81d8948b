//! The live page of the mesh at `/`: one HTML file, one script and one style sheet,
//! embedded in the binary (no CDN, no fonts, nothing fetched from elsewhere, no build
//! step), served with a content security policy that lets the page load only these and
//! talk only to this endpoint. The script reads the same JSON endpoints scripts use
//! ([`super::api`], `/v1/events`) and redraws as they change.
//!
//! Not here: what the JSON says, who may read it ([`super::access`]).

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// Everything the page is made of.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("web/index.html"),
    },
    Asset {
        path: "/page.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/page.js"),
    },
    Asset {
        path: "/page.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("web/page.css"),
    },
];

/// The content security policy of every answer: this origin's script, style and JSON
/// only; no frames, no forms, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The embedded file served at `path`, if any (`/index.html` is `/`).
pub fn asset(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_small_and_loads_nothing_from_elsewhere() {
        let total: usize = ASSETS.iter().map(|a| a.body.len()).sum();
        assert!(total < 150 * 1024, "the page is {total} bytes");
        for a in ASSETS {
            for outside in ["http://", "https://", "//fonts.", "@import", "cdn"] {
                assert!(!a.body.contains(outside), "{} mentions {outside:?}", a.path);
            }
        }
        let html = asset("/").map(|a| a.body).unwrap_or_default();
        assert!(html.contains(r#"src="/page.js""#), "{html}");
        assert!(html.contains(r#"href="/page.css""#), "{html}");
        assert!(asset("/index.html").is_some());
        assert!(asset("/nope.js").is_none());
    }
}
