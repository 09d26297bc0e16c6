//! A small blocking client of the running node's local HTTP API: the one place
//! that builds requests. Each endpoint of the API (see `smpl_node`'s `api`
//! module) is a method here, with its path and body; the commands only call them.
//!
//! An error answer becomes an error carrying the node's one-line message,
//! whatever its HTTP status; the command then exits 1.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use smpl_node::index::{SearchQuery, SearchResults};
use smpl_node::net::PeerInfo;
use smpl_node::{
    BuyOutcome, CheckReport, FetchEvent, Home, LicenseView, NodeInfo, Order, PackView, Preview, PublishEvent,
    PublishRequest, Recommendation,
};

pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// `/v1/packs/{id}{rest}` for a pack id (or prefix) as typed.
fn pack(id: &str, rest: &str) -> String {
    format!("/v1/packs/{}{rest}", id.trim())
}

/// `/v1/sales/{id}{rest}` for an order id (or prefix) as typed.
fn sale(id: &str, rest: &str) -> String {
    format!("/v1/sales/{}{rest}", id.trim())
}

impl Client {
    /// Connects to the node running for `home`, or explains how to start one.
    pub fn connect(home: &Home) -> Result<Client> {
        let info: NodeInfo = home.node_info()?;
        let token = home.api_token()?;
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        Ok(Client { base: info.api, token, agent })
    }

    pub fn id(&self) -> Result<NodeInfo> {
        self.get("/v1/id")
    }

    /// Publishes a folder; `each` sees every progress event.
    pub fn publish(
        &self,
        request: &PublishRequest,
        each: impl FnMut(PublishEvent) -> Result<()>,
    ) -> Result<()> {
        self.post_lines("/v1/publish", request, each)
    }

    pub fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        self.post("/v1/search", query)
    }

    pub fn show(&self, pack_id: &str) -> Result<PackView> {
        self.get(&pack(pack_id, ""))
    }

    /// `{"pack_id"}`.
    pub fn retract(&self, pack_id: &str) -> Result<Value> {
        self.post(&pack(pack_id, "/retract"), &json!({}))
    }

    /// `{"packs"}`.
    pub fn rebuild_index(&self) -> Result<Value> {
        self.post("/v1/index/rebuild", &json!({}))
    }

    pub fn check(&self) -> Result<CheckReport> {
        self.get("/v1/check")
    }

    /// `{"node_id","invite"}`.
    pub fn invite(&self) -> Result<Value> {
        self.get("/v1/invite")
    }

    pub fn status(&self) -> Result<smpl_node::Status> {
        self.get("/v1/status")
    }

    pub fn refused_sales(&self) -> Result<Vec<smpl_node::trade::RefusedOrder>> {
        self.get("/v1/sales/refused")
    }

    pub fn peers(&self) -> Result<Vec<PeerInfo>> {
        self.get("/v1/peers")
    }

    /// Fetches a pack (into `out`, else the library); `each` sees every progress event.
    pub fn fetch(
        &self,
        pack_id: &str,
        out: Option<PathBuf>,
        each: impl FnMut(FetchEvent) -> Result<()>,
    ) -> Result<()> {
        self.post_lines(&pack(pack_id, "/fetch"), &json!({ "out": out }), each)
    }

    /// `{"pack_id","ticket"}`.
    pub fn ticket(&self, pack_id: &str) -> Result<Value> {
        self.get(&pack(pack_id, "/ticket"))
    }

    pub fn preview(&self, pack_id: &str, sample: &str) -> Result<Preview> {
        self.get(&pack(pack_id, &format!("/preview?sample={}", url_escape(sample))))
    }

    pub fn recommend(&self, limit: usize) -> Result<Vec<Recommendation>> {
        self.get(&format!("/v1/recommend?limit={limit}"))
    }

    pub fn buy(&self, pack_id: &str, payment_ref: Option<String>, wait_secs: u64) -> Result<BuyOutcome> {
        self.post(&pack(pack_id, "/buy"), &json!({ "payment_ref": payment_ref, "wait_secs": wait_secs }))
    }

    /// `{"pack_id","license_id","certificate"}`.
    pub fn certificate(&self, pack_id: &str) -> Result<Value> {
        self.get(&pack(pack_id, "/certificate"))
    }

    pub fn sales(&self, pending: bool) -> Result<Vec<Order>> {
        self.get(&format!("/v1/sales?pending={pending}"))
    }

    pub fn approve(&self, order_id: &str) -> Result<Order> {
        self.post(&sale(order_id, "/approve"), &json!({}))
    }

    pub fn reject(&self, order_id: &str, reason: Option<String>) -> Result<Order> {
        self.post(&sale(order_id, "/reject"), &json!({ "reason": reason }))
    }

    pub fn connect_to(&self, addr: &str) -> Result<PeerInfo> {
        self.post("/v1/connect", &json!({ "addr": addr }))
    }

    pub fn purchases(&self) -> Result<Vec<Order>> {
        self.get("/v1/purchases")
    }

    pub fn licenses(&self, issued: bool) -> Result<Vec<LicenseView>> {
        self.get(&format!("/v1/licenses?issued={issued}"))
    }

    /// Sends a request with the token, without a body or with `body` as JSON.
    fn send<B: Serialize>(&self, path: &str, body: Option<&B>) -> Result<ureq::http::Response<ureq::Body>> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let sent = match body {
            None => self.agent.get(url).header("Authorization", auth).call(),
            Some(body) => self.agent.post(url).header("Authorization", auth).send_json(body),
        };
        sent.with_context(|| format!("cannot reach the node at {}", self.base))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        read_json(self.send::<()>(path, None)?)
    }

    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        read_json(self.send(path, Some(body))?)
    }

    /// Posts `body` and calls `each` for every JSON line of the streamed answer.
    fn post_lines<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        mut each: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let response = self.send(path, Some(body))?;
        if !response.status().is_success() {
            return read_json::<Value>(response).map(|_| ());
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
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or(text);
        bail!("{message}");
    }
    serde_json::from_str(&text).map_err(|e| anyhow!("unexpected answer from the node: {e}"))
}

/// Percent-encodes a query parameter value.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
