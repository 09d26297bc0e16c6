//! `smpl ui`: a one-time login URL of the running node's web app, opened in the
//! default browser (or printed, where there is none, with `--print`, or with
//! `--json` as `{"url"}`). The node swaps the URL's token for a session cookie.

use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, anyhow};
use smpl_node::{Home, NodeInfo};

use crate::output::Printer;

pub fn ui(home: &Home, out: &Printer, print_only: bool) -> Result<ExitCode> {
    let info: NodeInfo = home.node_info()?;
    let token = home.api_token()?;
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let mut response = agent
        .post(format!("{}/v1/ui/login", info.api))
        .header("Authorization", format!("Bearer {token}"))
        .send_json(serde_json::json!({}))
        .with_context(|| format!("cannot reach the node at {}", info.api))?;
    let status = response.status();
    let body: serde_json::Value = response.body_mut().read_json().context("reading the node's answer")?;
    if !status.is_success() {
        let message = body.get("error").and_then(|e| e.as_str()).unwrap_or("the node refused");
        return Err(anyhow!("{message}"));
    }
    let url =
        body.get("url").and_then(|u| u.as_str()).ok_or_else(|| anyhow!("the node sent no login URL"))?;
    if out.json() {
        out.object(&serde_json::json!({ "url": url }));
        return Ok(ExitCode::SUCCESS);
    }
    if !print_only && open(url) {
        out.line(format!("Opened the web app in your browser: {url}"));
    } else {
        out.line(format!("Open this one-time link in a browser: {url}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the desktop to open `url` in the default browser; false where there is
/// no desktop or no opener.
fn open(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return false;
        }
        "xdg-open"
    };
    Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
