//! The seller's policy for paid orders, and the external payment hook.
//!
//! `hook:CMD` runs `CMD` with `sh -c` for every paid order. It gets the order as
//! one JSON object on stdin ([`HookOrder`]) and answers on stdout: a first word
//! `approve`, or `reject` followed by a reason for the buyer. Anything else, a
//! non-zero exit status, or no answer within the timeout rejects the order with a
//! reason that says so; a hook that hangs is killed with its whole process group,
//! so it never holds up the node.
//!
//! The hook runs at most once per order: copies of the order that the buyer sends
//! while it runs are answered "pending", and an order whose hook was running when
//! the node stopped is not given to the hook again but waits for the seller's
//! `smpl sales approve` or `reject`, since the hook may have taken the payment.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;
use smpl_protocol::{NodeId, PackId, Price};

use super::Order;

/// How long a payment hook may take by default.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a hook's stdout and stderr that is read.
const MAX_HOOK_OUTPUT: u64 = 64 * 1024;

/// What the seller's node does with an order for a paid pack. Free packs are
/// issued at once under every policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SellerPolicy {
    /// Orders wait for `smpl sales approve` or `reject`.
    #[default]
    Manual,
    /// Every order at the listed price is issued at once.
    Auto,
    /// An external command decides (see the module docs).
    Hook(String),
}

impl FromStr for SellerPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<SellerPolicy, String> {
        match s {
            "manual" => Ok(SellerPolicy::Manual),
            "auto" => Ok(SellerPolicy::Auto),
            _ => match s.strip_prefix("hook:") {
                Some(cmd) if !cmd.trim().is_empty() => Ok(SellerPolicy::Hook(cmd.to_string())),
                Some(_) => Err("`hook:` needs a command, e.g. `hook:./check-payment.sh`".into()),
                None => Err(format!("unknown seller policy {s:?}; use manual, auto or hook:CMD")),
            },
        }
    }
}

impl std::fmt::Display for SellerPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SellerPolicy::Manual => f.write_str("manual"),
            SellerPolicy::Auto => f.write_str("auto"),
            SellerPolicy::Hook(cmd) => write!(f, "hook:{cmd}"),
        }
    }
}

/// What a policy decided about one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    /// Keep it pending for the seller.
    Wait,
    Reject(String),
}

/// The order as a payment hook sees it on stdin.
#[derive(Debug, Serialize)]
pub struct HookOrder<'a> {
    pub order_id: &'a str,
    pub pack_id: PackId,
    pub title: &'a str,
    pub seq: u64,
    pub buyer: NodeId,
    pub price: Option<&'a Price>,
    pub payment_ref: Option<&'a str>,
    pub created_at: u64,
}

impl<'a> From<&'a Order> for HookOrder<'a> {
    fn from(order: &'a Order) -> HookOrder<'a> {
        HookOrder {
            order_id: &order.order_id,
            pack_id: order.pack_id,
            title: &order.title,
            seq: order.seq,
            buyer: order.buyer,
            price: order.price.as_ref(),
            payment_ref: order.payment_ref.as_deref(),
            created_at: order.created_at,
        }
    }
}

/// Runs the payment hook `cmd` on `order`, waiting at most `timeout`.
pub fn run_hook(cmd: &str, order: &HookOrder<'_>, timeout: Duration) -> Decision {
    use std::os::unix::process::CommandExt;

    let input = match serde_json::to_vec(order) {
        Ok(mut input) => {
            input.push(b'\n');
            input
        }
        Err(e) => {
            return Decision::Reject(format!("the order could not be encoded for the payment hook: {e}"));
        }
    };
    let mut child = match Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Decision::Reject(format!("the payment hook could not be started: {e}")),
    };
    // Feed and drain on threads, so a hook that neither reads nor exits cannot
    // block us; they end when the hook's pipes close.
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(pipe) = pipe {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.take(MAX_HOOK_OUTPUT).read_to_string(&mut text);
                let _ = tx.send(text);
            });
        }
        rx
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                kill_group(child.id());
                let _ = child.wait();
                return Decision::Reject(format!(
                    "the payment hook did not answer within {} s",
                    timeout.as_secs_f32()
                ));
            }
            Err(e) => return Decision::Reject(format!("waiting for the payment hook failed: {e}")),
        }
    };
    // Whatever the hook left running must not outlive it.
    kill_group(child.id());
    let grace = Duration::from_secs(1);
    let out = stdout.recv_timeout(grace).unwrap_or_default();
    if !status.success() {
        let err = stderr.recv_timeout(grace).unwrap_or_default();
        let detail = err.lines().chain(out.lines()).find(|l| !l.trim().is_empty()).unwrap_or("no output");
        return Decision::Reject(format!("the payment hook failed ({status}): {}", detail.trim()));
    }
    decide(&out)
}

/// Reads a hook's answer.
fn decide(out: &str) -> Decision {
    let answer = out.trim();
    let (word, rest) = answer.split_once(char::is_whitespace).unwrap_or((answer, ""));
    let reason: String = rest.trim().chars().take(200).collect();
    match word.to_ascii_lowercase().as_str() {
        "approve" | "approved" => Decision::Approve,
        "reject" | "rejected" if reason.is_empty() => Decision::Reject("rejected by the payment hook".into()),
        "reject" | "rejected" => Decision::Reject(reason),
        _ => Decision::Reject(format!(
            "the payment hook answered {:?}, neither `approve` nor `reject REASON`",
            answer.chars().take(80).collect::<String>()
        )),
    }
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the process group the hook
        // leads (it was started with `process_group(0)`); no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> HookOrder<'static> {
        HookOrder {
            order_id: "00112233aabbccdd",
            pack_id: PackId([1; 16]),
            title: "Dusty Drums",
            seq: 1,
            buyer: NodeId([2; 32]),
            price: None,
            payment_ref: Some("PAID-42"),
            created_at: 1_700_000_000,
        }
    }

    #[test]
    fn policies_parse() {
        assert_eq!("auto".parse(), Ok(SellerPolicy::Auto));
        assert_eq!("manual".parse(), Ok(SellerPolicy::Manual));
        assert_eq!("hook:./pay.sh --x".parse(), Ok(SellerPolicy::Hook("./pay.sh --x".into())));
        assert!("hook:".parse::<SellerPolicy>().is_err());
        assert!("sometimes".parse::<SellerPolicy>().is_err());
        assert_eq!(SellerPolicy::Hook("a b".into()).to_string(), "hook:a b");
    }

    #[test]
    fn hook_answers() {
        let t = Duration::from_secs(5);
        let approve = r#"grep -q '"payment_ref":"PAID-' && echo approve || echo 'reject no payment found'"#;
        assert_eq!(run_hook(approve, &order(), t), Decision::Approve);
        let mut unpaid = order();
        unpaid.payment_ref = Some("IOU");
        assert_eq!(run_hook(approve, &unpaid, t), Decision::Reject("no payment found".into()));
        let Decision::Reject(why) = run_hook("echo maybe", &order(), t) else { panic!() };
        assert!(why.contains("neither"), "{why}");
        let Decision::Reject(why) = run_hook("echo card declined >&2; exit 3", &order(), t) else { panic!() };
        assert!(why.contains("exit status: 3") && why.contains("card declined"), "{why}");
        let Decision::Reject(why) = run_hook("/nonexistent/hook", &order(), t) else { panic!() };
        assert!(why.contains("failed"), "{why}");
    }

    #[test]
    fn a_hanging_hook_is_killed_in_time() {
        let started = Instant::now();
        // The grandchild keeps stdout open; killing the group must still end it.
        let Decision::Reject(why) = run_hook("sleep 30 & sleep 30", &order(), Duration::from_millis(500))
        else {
            panic!()
        };
        assert!(why.contains("did not answer within 0.5 s"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }
}
