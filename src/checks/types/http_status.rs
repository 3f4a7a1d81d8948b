//! The `http_status` check: does a GET of a URL answer with the expected status code?
//!
//! Blocking (ureq), so the runner calls it on a blocking thread; ureq's own global
//! timeout is set to the check's timeout so the thread does not outlive the check by
//! much. Redirects are not followed (a `301` can be checked), any status is a result
//! rather than an error, and proxy environment variables are ignored: the check talks to
//! the URL directly. `https://` verifies certificates against the bundled web roots.
//! Connection, DNS, TLS and timeout failures are `Error`s.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, non_empty_text, req,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::run::{CheckContext, blocking};

/// `http_status`: a GET of `url` answers with `status` (redirects are not followed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpStatus {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Expected HTTP status code, 100–599.
    pub status: u16,
}

impl CheckType for HttpStatus {
    const NAME: &'static str = "http_status";
    const DOC: &'static str =
        "passes when a GET of url answers with status (redirects not followed)";
    const FIELDS: &'static [FieldSpec] = &[
        req("url", FieldType::String),
        req("status", FieldType::Integer),
    ];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(HttpStatus {
            url: fields.required("url"),
            status: u16::try_from(fields.int("status").unwrap_or_default())
                .ok()
                .filter(|s| (100..=599).contains(s))
                .ok_or_else(|| {
                    FieldProblem::on(
                        "status",
                        "status must be an HTTP status code between 100 and 599",
                    )
                })?,
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        vec![
            ("url", Typed::Str(self.url.clone())),
            ("status", Typed::Int(self.status.into())),
        ]
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        non_empty_text("url", &self.url)?;
        let lower = self.url.to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(FieldProblem::on(
                "url",
                "url must start with http:// or https://",
            ));
        }
        if !(100..=599).contains(&self.status) {
            return Err(FieldProblem::on(
                "status",
                "status must be an HTTP status code between 100 and 599",
            ));
        }
        Ok(())
    }

    fn expected(&self) -> Facts {
        Facts::new().with("status", self.status.to_string())
    }

    async fn run(self, ctx: CheckContext) -> CheckResult {
        let timeout = ctx.timeout;
        blocking(move || http_status(&self.url, self.status, timeout)).await
    }
}

/// Runs `http_status` with an overall time limit of `timeout`. Found: the `status` that
/// came back, and the `location` a redirect points to.
fn http_status(url: &str, status: u16, timeout: Duration) -> CheckResult {
    match get_status(url, timeout) {
        Ok((got, location)) => {
            let mut found = Facts::new().with("status", got.to_string());
            if let Some(location) = location {
                found = found.with("location", location);
            }
            CheckResult::holds(got == status, found)
        }
        Err(e) => CheckResult::error(e),
    }
}

/// The status code a GET of `url` answers with and the `location` header a redirect
/// carries (redirects not followed, proxies ignored), within `timeout`; the error names
/// the URL and what failed.
pub(crate) fn get_status(url: &str, timeout: Duration) -> Result<(u16, Option<String>), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(response) => Ok((
            response.status().as_u16(),
            response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned),
        )),
        Err(e) => Err(format!("GET {url}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// Serves `responses.len()` connections on loopback, one canned response each.
    fn serve(responses: Vec<&'static str>) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            for response in responses {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                // Read the request head up to the blank line.
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    if line == "\r\n" {
                        break;
                    }
                    line.clear();
                }
                let _ = reader.get_mut().write_all(response.as_bytes());
            }
        });
        (base, handle)
    }

    #[test]
    fn compares_the_status_without_following_redirects() {
        let (base, server) = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ]);
        let url = format!("{base}/health");
        let timeout = Duration::from_secs(10);
        assert_eq!(http_status(&url, 200, timeout), Outcome::Success(true));
        assert_eq!(http_status(&url, 200, timeout), Outcome::Success(false));
        assert_eq!(http_status(&url, 301, timeout), Outcome::Success(true));
        server.join().unwrap();
    }

    #[test]
    fn connection_failures_are_errors() {
        // Bind then drop to get a port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/");
        match http_status(&url, 200, Duration::from_secs(5)).outcome {
            Outcome::Error(e) => assert!(e.starts_with(&format!("GET {url}: ")), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
