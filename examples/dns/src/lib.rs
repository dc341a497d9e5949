//! The DNS lookup tutorial that opens "Ray for Data Science" (the seeds'
//! `004`), ported line for line: the same table, the same names, the same
//! printed lines. Each lookup sleeps 0.5 s to stand in for slow I/O, so
//! three lookups in a row take ~1.5 s and three lookup tasks ~0.5 s. Then
//! the table moves into a `DNSServer` actor, which tasks query.

use std::time::{Duration, Instant};
use wray::{ActorHandle, ObjectRef};

/// Some absolutely correct addresses (in the tutorial's order: a Python
/// dict keeps insertion order, so the table is a list of pairs).
const ADDRESSES: [(&str, &str); 3] =
    [("google.com", "4.3.2.1"), ("microsoft.com", "4.3.2.2"), ("amazon.com", "4.3.2.3")];

fn address_of(name: &str) -> String {
    ADDRESSES.iter().find(|(n, _)| *n == name).map(|(_, a)| a.to_string()).unwrap_or_default()
}

/// A function to return an address for a name. It takes a long time to run!
fn lookup(name: &str) -> (String, String) {
    std::thread::sleep(Duration::from_millis(500));
    (name.to_string(), address_of(name))
}

/// The remote version: otherwise identical to `lookup`. Lookups wait, they
/// do not compute, so each asks for a quarter of a CPU and all of them run
/// at once even on a small machine.
#[wray::remote]
fn ray_lookup(name: String) -> (String, String) {
    lookup(&name)
}

/// The tutorial's actor: the table as actor state.
#[wray::actor]
pub struct DNSServer {
    addresses: Vec<(String, String)>,
}

#[wray::actor]
impl DNSServer {
    pub fn new(initial_addresses: Vec<(String, String)>) -> Self {
        DNSServer { addresses: initial_addresses }
    }

    pub fn lookup(&self, name: String) -> (String, String) {
        let address = self.addresses.iter().find(|(n, _)| *n == name).map(|(_, a)| a.clone()).unwrap_or_default();
        (name, address)
    }

    pub fn get_addresses(&self) -> Vec<(String, String)> {
        self.addresses.clone()
    }

    pub fn update_address(&mut self, name: String, ip: String) {
        match self.addresses.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = ip,
            None => self.addresses.push((name, ip)),
        }
    }
}

/// Now use the server: answers the name and a ref to the server's answer
/// (two levels of refs, as in the tutorial).
#[wray::remote]
fn server_lookup(server: ActorHandle<DNSServer>, name: String) -> (String, ObjectRef<(String, String)>) {
    std::thread::sleep(Duration::from_millis(500));
    let answer = server.lookup(name.clone());
    (name, answer)
}

#[wray::main]
fn main() -> Result<(), wray::Error> {
    println!("# lookups one after another");
    let start = Instant::now();
    for (name, _) in ADDRESSES {
        let (_, address) = lookup(name);
        let delta = start.elapsed().as_secs_f64();
        println!("{name}:\t {address} ({delta:.3} seconds)");
    }

    println!("# lookups as tasks, all started before waiting");
    let start = Instant::now();
    let references: Vec<_> =
        ADDRESSES.iter().map(|(name, _)| ray_lookup::options().num_cpus(0.25).remote(name.to_string())).collect();
    let ns_addresses = wray::get_all(&references)?;
    for (name, address) in ns_addresses {
        let delta = start.elapsed().as_secs_f64();
        println!("{name}:\t {address} ({delta:.3} seconds)");
    }

    println!("# a DNSServer actor");
    let initial: Vec<_> = ADDRESSES.iter().map(|(n, a)| (n.to_string(), a.to_string())).collect();
    let server = DNSServer::remote(initial);
    server.update_address("twitter.com".to_string(), "4.3.2.4".to_string());
    server.update_address("instagram.com".to_string(), "4.3.2.5".to_string());
    let names_addresses = wray::get(&server.get_addresses())?;
    for (name, address) in &names_addresses {
        println!("{name}:\t {address}");
    }

    println!("# lookups as tasks asking the actor");
    let start = Instant::now();
    let refs: Vec<_> = names_addresses
        .iter()
        .map(|(name, _)| server_lookup::options().num_cpus(0.25).remote(server.clone(), name.clone()))
        .collect();
    for (name, ref2) in wray::get_all(&refs)? {
        let delta = start.elapsed().as_secs_f64();
        let (_, address) = wray::get(&ref2)?;
        println!("{name}:\t {address} ({delta:.3} seconds)");
    }
    Ok(())
}
