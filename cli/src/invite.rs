//! `smpl invite`: the one line a friend needs to reach this node, with no server
//! in between. It names this node and every address it can be dialled at: public
//! ones that AutoNAT confirmed, its listen addresses, and the relayed addresses it
//! holds on relays among its peers. `smpl connect LINE` and `smpl node --bootstrap
//! LINE` take it as it is; `bootstrap = ["LINE"]` in config.toml keeps it.

use std::process::ExitCode;

use anyhow::{Result, bail};
use smpl_node::Home;

use crate::client::Client;
use crate::output::Printer;

pub fn invite(home: &Home, out: &Printer) -> Result<ExitCode> {
    let answer = Client::connect(home)?.invite()?;
    let Some(line) = answer.get("invite").and_then(|l| l.as_str()).filter(|l| !l.is_empty()) else {
        bail!("the node has no address a friend could dial yet (is it listening?)");
    };
    if out.json() {
        out.object(&answer);
    } else {
        out.line(line);
    }
    Ok(ExitCode::SUCCESS)
}
