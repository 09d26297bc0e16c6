//! A small blocking client of the running node's local HTTP API.

use std::io::{BufRead, BufReader};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use smpl_node::{Home, NodeInfo};

pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// Connects to the node running for `home`, or explains how to start one.
    pub fn connect(home: &Home) -> Result<Client> {
        let info: NodeInfo = home.node_info()?;
        let token = home.api_token()?;
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        Ok(Client { base: info.api, token, agent })
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", self.auth())
            .call()
            .with_context(|| format!("cannot reach the node at {}", self.base))?;
        read_json(response)
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", self.auth())
            .send_json(body)
            .with_context(|| format!("cannot reach the node at {}", self.base))?;
        read_json(response)
    }

    /// Posts `body` and calls `each` for every JSON line of the streamed answer.
    pub fn post_lines<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        mut each: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", self.auth())
            .send_json(body)
            .with_context(|| format!("cannot reach the node at {}", self.base))?;
        if !response.status().is_success() {
            return read_json::<serde_json::Value>(response).map(|_| ());
        }
        let reader = BufReader::new(response.into_body().into_reader());
        for line in reader.lines() {
            let line = line.context("the node closed the connection mid-answer")?;
            if line.trim().is_empty() {
                continue;
            }
            each(serde_json::from_str(&line).with_context(|| format!("unreadable answer line: {line}"))?)?;
        }
        Ok(())
    }
}

fn read_json<T: DeserializeOwned>(response: ureq::http::Response<ureq::Body>) -> Result<T> {
    let status = response.status();
    let mut body = response.into_body();
    let text = body.read_to_string().context("cannot read the node's answer")?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or(text);
        bail!("{message}");
    }
    serde_json::from_str(&text).map_err(|e| anyhow!("unexpected answer from the node: {e}"))
}
