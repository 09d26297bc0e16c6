//! Buying and selling commands: `buy`, `sales`, `licenses` and `license`.
//! All but `license verify` talk to the running node; `license verify` works
//! offline, from the certificate file alone.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use smpl_node::trade::buyer_label;
use smpl_node::trade::{Expect, LicenseError, check_files, check_token, content_of};
use smpl_node::{Home, Order, OrderStatus};
use smpl_protocol::certificate::{self, utc_time};
use smpl_protocol::{NodeId, PackId, Price};

use crate::client::Client;
use crate::output::Printer;

#[derive(Args, Debug)]
pub struct BuyArgs {
    /// The pack id (or a unique prefix of it).
    pack_id: String,
    /// A payment reference for the seller (e.g. a transfer or invoice id).
    #[arg(long, value_name = "REF")]
    payment_ref: Option<String>,
    /// Wait up to this many seconds for a pending order to be decided.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    wait: u64,
}

#[derive(Args, Debug)]
pub struct SalesArgs {
    #[command(subcommand)]
    action: Option<SalesAction>,
    /// Only orders waiting for a decision.
    #[arg(long)]
    pending: bool,
    /// The orders rejected before they were kept (not for this node, underpaid,
    /// too many pending), newest first.
    #[arg(long, conflicts_with = "pending")]
    refused: bool,
}

#[derive(Subcommand, Debug)]
enum SalesAction {
    /// Approve a pending order: issue its license.
    Approve {
        /// The order id (or a unique prefix of it), as `smpl sales` lists it.
        order_id: String,
    },
    /// Reject a pending order.
    Reject {
        /// The order id (or a unique prefix of it), as `smpl sales` lists it.
        order_id: String,
        /// Told to the buyer.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct LicensesArgs {
    /// The licenses this node issued as a seller, instead of those it holds.
    #[arg(long)]
    issued: bool,
}

#[derive(Subcommand, Debug)]
pub enum LicenseCommand {
    /// Write the license certificate of a pack (human-readable, with the token).
    Export {
        /// The pack id (or a unique prefix of it).
        pack_id: String,
        /// Write it here instead of printing it.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Check a license certificate offline: signature, seller, buyer, and with
    /// --files that a file or folder holds only licensed files (and which).
    /// Exit 1 if invalid.
    Verify {
        /// The certificate file (`smpl license export` writes one).
        file: PathBuf,
        /// A file or folder that must hold only licensed files, compared by their
        /// bytes: the pack folder, a single sample, or a project's copies of some.
        #[arg(long, value_name = "PATH")]
        files: Option<PathBuf>,
        /// The node id the license must be issued to (default: this node's id,
        /// which must be the buyer or the seller, when this home has one).
        #[arg(long, value_name = "ID")]
        buyer: Option<NodeId>,
        /// The pack id the license must be for.
        #[arg(long, value_name = "PACK_ID")]
        pack: Option<PackId>,
    },
}

fn price(p: &Option<Price>) -> String {
    p.as_ref().map_or_else(|| "free".to_string(), |p| p.to_string())
}

pub fn buy(home: &Home, out: &Printer, args: BuyArgs) -> Result<ExitCode> {
    let outcome = Client::connect(home)?.buy(&args.pack_id, args.payment_ref, args.wait)?;
    if out.json() {
        out.object(&outcome);
    } else {
        if outcome.resent {
            out.note(format!(
                "order {} for this version was pending already; sent it again",
                outcome.order_id
            ));
        }
        if outcome.upgrade && outcome.status == OrderStatus::Issued {
            out.note("you hold a licence of an earlier version that covers this one: no payment needed");
        }
        if let Some(payment) = outcome.payment.as_ref().filter(|_| outcome.status == OrderStatus::Pending) {
            out.line(format!("how to pay the seller: {}", payment.text));
            if let Some(url) = &payment.url {
                out.line(format!("  {url}"));
            }
            out.line(format!("  (give the order id {} as the reference)", outcome.order_id));
        }
        match outcome.status {
            OrderStatus::Issued => out.line(format!(
                "license {} issued for {}; fetch it with `smpl fetch {}`",
                outcome.license_id.map(|l| l.to_string()).unwrap_or_default(),
                outcome.pack_id,
                outcome.pack_id
            )),
            OrderStatus::Pending => out.line(format!(
                "order {} is pending: {}",
                outcome.order_id,
                outcome.reason.as_deref().unwrap_or("waiting for the seller")
            )),
            OrderStatus::Rejected => out.line(format!(
                "order {} was rejected: {}",
                outcome.order_id,
                outcome.reason.as_deref().unwrap_or("no reason given")
            )),
        }
    }
    Ok(if outcome.status == OrderStatus::Rejected { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn sales(home: &Home, out: &Printer, args: SalesArgs) -> Result<ExitCode> {
    let client = Client::connect(home)?;
    if args.refused && args.action.is_none() {
        let refused = client.refused_sales()?;
        if out.json() {
            for r in &refused {
                out.object(r);
            }
        } else {
            let rows: Vec<Vec<String>> = refused
                .iter()
                .map(|r| {
                    let buyer = match &r.buyer_name {
                        Some(name) => format!("{name} ({})", &r.buyer.to_hex()[..8]),
                        None => r.buyer.to_hex()[..8].to_string(),
                    };
                    vec![r.order_id.clone(), r.pack_id.to_hex(), buyer, utc_time(r.at), r.reason.clone()]
                })
                .collect();
            out.table(&["ORDER", "PACK", "BUYER", "REFUSED", "REASON"], &rows);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let orders: Vec<Order> = match args.action {
        None => client.sales(args.pending)?,
        Some(SalesAction::Approve { order_id }) => vec![client.approve(&order_id)?],
        Some(SalesAction::Reject { order_id, reason }) => vec![client.reject(&order_id, reason)?],
    };
    if out.json() {
        for o in &orders {
            out.object(&json!({
                "order_id": o.order_id, "pack_id": o.pack_id, "title": o.title, "seq": o.seq,
                "buyer": o.buyer, "buyer_name": o.buyer_name, "status": o.status, "price": o.price, "payment_ref": o.payment_ref,
                "license_id": o.license_id, "reason": o.reason, "created_at": o.created_at,
            }));
        }
    } else {
        let rows: Vec<Vec<String>> = orders
            .iter()
            .map(|o| {
                vec![
                    o.order_id.clone(),
                    o.status.to_string(),
                    o.title.clone(),
                    price(&o.price),
                    o.payment_ref.clone().unwrap_or_default(),
                    buyer_label(o),
                    utc_time(o.created_at),
                    note(o),
                ]
            })
            .collect();
        out.table(&["ORDER", "STATUS", "PACK", "PRICE", "PAYMENT", "BUYER", "ORDERED", "REASON"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// The reason an order shows, or what kind of order it is.
fn note(o: &Order) -> String {
    match (&o.reason, o.upgrade_of) {
        (Some(reason), _) => reason.clone(),
        (None, Some(license)) => format!("update, covered by licence {license}"),
        (None, None) => String::new(),
    }
}

#[derive(Args, Debug)]
pub struct PurchasesArgs {
    /// Only orders still waiting for the seller.
    #[arg(long)]
    pending: bool,
}

/// The buyer's orders and where each stands.
pub fn purchases(home: &Home, out: &Printer, args: PurchasesArgs) -> Result<ExitCode> {
    let mut orders = Client::connect(home)?.purchases()?;
    orders.retain(|o| !args.pending || o.status == OrderStatus::Pending);
    if out.json() {
        for o in &orders {
            out.object(o);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let rows: Vec<Vec<String>> = orders
        .iter()
        .map(|o| {
            let state = match (o.status, o.unreachable_since) {
                (OrderStatus::Pending, Some(since)) => {
                    format!("pending; seller unreachable for {} min", now.saturating_sub(since) / 60)
                }
                (status, _) => status.to_string(),
            };
            vec![
                o.order_id.clone(),
                state,
                o.title.clone(),
                o.seq.to_string(),
                price(&o.price),
                utc_time(o.created_at),
                match (&o.reason, &o.payment) {
                    (Some(reason), _) => reason.clone(),
                    (None, Some(p)) if o.status == OrderStatus::Pending => format!("pay: {}", p.text),
                    _ => String::new(),
                },
            ]
        })
        .collect();
    out.table(&["ORDER", "STATUS", "PACK", "VERSION", "PRICE", "ORDERED", "NOTE"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub fn licenses(home: &Home, out: &Printer, args: LicensesArgs) -> Result<ExitCode> {
    let licenses = Client::connect(home)?.licenses(args.issued)?;
    if out.json() {
        for l in &licenses {
            let mut value = serde_json::to_value(l)?;
            // Stored licenses were verified on receipt and again when read.
            value["valid"] = json!(true);
            out.object(&value);
        }
    } else {
        let rows: Vec<Vec<String>> = licenses
            .iter()
            .map(|l| {
                vec![
                    l.license_id.to_string(),
                    l.pack_id.to_string(),
                    l.title.clone(),
                    l.seq.to_string(),
                    price(&l.price),
                    l.seller.to_string()[..16].to_string(),
                    l.buyer.to_string()[..16].to_string(),
                    utc_time(l.issued_at),
                ]
            })
            .collect();
        out.table(&["LICENSE", "PACK", "TITLE", "VERSION", "PRICE", "SELLER", "BUYER", "ISSUED"], &rows);
    }
    Ok(if licenses.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn license(home: &Home, out: &Printer, command: LicenseCommand) -> Result<ExitCode> {
    match command {
        LicenseCommand::Export { pack_id, output } => export(home, out, &pack_id, output),
        LicenseCommand::Verify { file, files, buyer, pack } => verify(home, out, &file, files, buyer, pack),
    }
}

fn export(home: &Home, out: &Printer, pack_id: &str, output: Option<PathBuf>) -> Result<ExitCode> {
    let answer = Client::connect(home)?.certificate(pack_id)?;
    let text = answer["certificate"].as_str().context("the node sent no certificate")?;
    match &output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
            if out.json() {
                out.object(&json!({ "pack_id": answer["pack_id"], "license_id": answer["license_id"], "file": path }));
            } else {
                out.line(format!(
                    "wrote the certificate of license {} to {}",
                    answer["license_id"],
                    path.display()
                ));
            }
        }
        None if out.json() => out.object(&answer),
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(
    home: &Home,
    out: &Printer,
    file: &PathBuf,
    files: Option<PathBuf>,
    buyer: Option<NodeId>,
    pack: Option<PackId>,
) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    // Without --buyer, a home with an identity checks that the license is its own.
    let me = if buyer.is_none() && home.identity_path().exists() {
        Some(home.identity()?.node_id())
    } else {
        None
    };
    let result = (|| -> Result<_, LicenseError> {
        let cert = certificate::parse(&bytes)?;
        let (token, _) = check_token(&cert.token, &Expect { buyer, pack, content: None })?;
        if let Some(me) = me
            && token.buyer != me
            && token.seller != me
        {
            return Err(LicenseError::WrongBuyer { expected: me, actual: token.buyer });
        }
        if !cert.files.is_empty() && content_of(&cert.files) != token.content {
            return Err(LicenseError::FileList { content: token.content });
        }
        let found = match &files {
            Some(path) => Some(check_files(path, &cert.files)?),
            None => None,
        };
        Ok((token, found))
    })();
    match result {
        Ok((token, found)) => {
            if out.json() {
                out.object(&json!({
                    "valid": true, "license_id": token.license_id, "pack_id": token.pack_id, "seq": token.seq,
                    "seller": token.seller, "buyer": token.buyer, "content": token.content,
                    "price": token.price, "issued_at": token.issued_at, "files_checked": files.is_some(),
                    "files_found": found.as_ref().map(|f| &f.found),
                    "files_licensed": found.as_ref().map(|f| f.licensed),
                }));
            } else {
                out.line(format!(
                    "valid: license {} for pack {} version {}, issued {} by seller {} to buyer {} ({})",
                    token.license_id,
                    token.pack_id,
                    token.seq,
                    utc_time(token.issued_at),
                    token.seller,
                    token.buyer,
                    price(&token.price)
                ));
                if let (Some(path), Some(found)) = (&files, &found) {
                    if found.complete() {
                        out.line(format!("{} holds every licensed file and nothing else", path.display()));
                    } else {
                        out.line(format!(
                            "{} holds {} of the {} licensed files, and nothing unlicensed:",
                            path.display(),
                            found.found.len(),
                            found.licensed
                        ));
                        for name in &found.found {
                            out.line(format!("  {name}"));
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if out.json() {
                out.object(&json!({ "valid": false, "reason": e.to_string() }));
            } else {
                out.line(format!("invalid: {e}"));
            }
            Ok(ExitCode::from(1))
        }
    }
}
