//! Finding the cluster a command talks to: `--address`/`--token` (or
//! `WRAY_ADDRESS`/`WRAY_TOKEN`) when given, else the head that `wray start
//! --head` runs on this machine for this user — as `ray status` or `ray list
//! tasks` on the head's machine find their cluster without being told.
//!
//! The head is found through the registry `wray stop` reads (one file per
//! node process, naming its data directory): a live process started with
//! `--head` whose data directory holds its `address` (written once the node
//! serves, removed when it stops) and its `token` (mode 0600, this user's
//! like the registry itself). Nothing here reaches the network.

use crate::Failure;
use anyhow::anyhow;
use std::path::PathBuf;

/// What `--address` may say instead of HOST:PORT: the head running on this
/// machine (Ray's `address="auto"`). For `wray run` it is the way to send a
/// job there, since without `--address` a job runs on the embedded runtime.
pub(crate) const AUTO: &str = "auto";

/// A head node started on this machine by `wray start --head`.
#[derive(Debug)]
pub(crate) struct LocalHead {
    pub pid: i32,
    pub data_dir: PathBuf,
    pub address: String,
    pub token: String,
}

/// The heads running on this machine for this user, by process id.
pub(crate) fn local_heads() -> Vec<LocalHead> {
    let mut heads: Vec<LocalHead> = super::start::registered()
        .into_iter()
        .filter_map(|super::start::Registered { pid, data_dir, .. }| {
            if !alive(pid) || !started_as_head(pid) {
                return None;
            }
            let read = |name: &str| {
                std::fs::read_to_string(data_dir.join(name))
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            };
            let (address, token) = (read("address")?, read("token")?);
            Some(LocalHead { pid, data_dir, address, token })
        })
        .collect();
    heads.sort_by_key(|h| h.pid);
    heads
}

/// The cluster a command talks to.
pub(crate) struct Target {
    pub address: String,
    pub token: String,
    /// The head's data directory, when it was found on this machine.
    pub local: Option<PathBuf>,
}

/// The cluster to talk to: the flags' (or their environment variables')
/// when `--address` names one, the local head's when `--address` is missing
/// or [`AUTO`] — with the given `--token` if there is one.
pub(crate) fn resolve(address: Option<String>, token: Option<String>) -> Result<Target, Failure> {
    match address {
        Some(a) if a != AUTO => {
            let token = token.ok_or_else(|| {
                anyhow!("--address {a} needs --token (or WRAY_TOKEN): the token `wray start --head` printed")
            })?;
            Ok(Target { address: a, token, local: None })
        }
        given => {
            let head = the_local_head(given.is_some())?;
            Ok(Target { address: head.address, token: token.unwrap_or(head.token), local: Some(head.data_dir) })
        }
    }
}

/// The one head on this machine; an error naming what to do when there is
/// none or more than one. `asked`: `--address auto` was given (rather than
/// no address at all), which the error says.
pub(crate) fn the_local_head(asked: bool) -> Result<LocalHead, Failure> {
    let mut heads = local_heads();
    match heads.len() {
        1 => Ok(heads.remove(0)),
        0 => {
            let why = if asked { "--address auto: no" } else { "no --address (or WRAY_ADDRESS) was given, and no" };
            Err(Failure::Usage(anyhow!(
                "{why} head node started with `wray start --head` runs on this machine; start one, or give --address HOST:PORT and --token"
            )))
        }
        n => {
            let list: Vec<String> =
                heads.iter().map(|h| format!("{} (pid {}, {})", h.address, h.pid, h.data_dir.display())).collect();
            Err(Failure::Usage(anyhow!(
                "{n} head nodes run on this machine: {}; give --address HOST:PORT (and --token) to choose one",
                list.join(", ")
            )))
        }
    }
}

/// Whether process `pid` exists and is not a zombie (which still "exists"
/// for `kill(pid, 0)`).
pub(crate) fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Whether process `pid` is a `wray start --head`: a registry entry's
/// process id may have been reused by another program since (the entry of
/// a node killed outright stays until `wray stop`), and a worker's data
/// directory can hold a token left from an earlier head.
fn started_as_head(pid: i32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.iter().any(|a| *a == b"start") && args.iter().any(|a| *a == b"--head")
}
