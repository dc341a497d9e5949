//! DNS lookups as tasks, then a DNS server as an actor — the first Ray
//! tutorial, ported. Each lookup sleeps 0.5 s to stand in for network I/O:
//! three in a row take ~1.5 s, three as parallel tasks ~0.5 s.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use wray::ActorHandle;

/// A slow lookup: sleeps, then answers from a fixed table.
fn resolve(name: &str) -> String {
    std::thread::sleep(Duration::from_millis(500));
    let n = name.bytes().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.0.{}.{}", (n >> 8) % 256, n % 256)
}

/// The remote version. Lookups wait on I/O, not the CPU, so each asks for a
/// quarter of a CPU: many run at once even on a small machine.
#[wray::remote]
fn lookup(name: String) -> String {
    resolve(&name)
}

/// A DNS server keeping its table as actor state.
#[wray::actor]
pub struct DnsServer {
    table: BTreeMap<String, String>,
}

#[wray::actor]
impl DnsServer {
    pub fn new(initial: BTreeMap<String, String>) -> Self {
        DnsServer { table: initial }
    }

    pub fn update_address(&mut self, name: String, addr: String) {
        self.table.insert(name, addr);
    }

    pub fn get_addresses(&self) -> BTreeMap<String, String> {
        self.table.clone()
    }

    pub fn lookup(&self, name: String) -> Option<String> {
        self.table.get(&name).cloned()
    }
}

/// A task that registers a name with the server it is handed.
#[wray::remote]
fn register(server: ActorHandle<DnsServer>, name: String, addr: String) -> Result<(), wray::Error> {
    wray::get(&server.update_address(name, addr))
}

#[wray::main]
fn main() -> Result<(), wray::Error> {
    let names = ["ray.io", "wasmtime.dev", "rust-lang.org"];

    let start = Instant::now();
    let sequential: Vec<String> = names.iter().map(|n| resolve(n)).collect();
    println!("sequential lookups: {:.2} s", start.elapsed().as_secs_f64());

    let start = Instant::now();
    let refs: Vec<_> = names.iter().map(|n| lookup::options().num_cpus(0.25).remote(n.to_string())).collect();
    let parallel = wray::get_all(&refs)?;
    println!("lookups as tasks:   {:.2} s", start.elapsed().as_secs_f64());
    assert_eq!(sequential, parallel);

    let server = DnsServer::remote(BTreeMap::from([("localhost".to_string(), "127.0.0.1".to_string())]));
    let registrations: Vec<_> =
        names.iter().zip(&parallel).map(|(n, a)| register::remote(server.clone(), n.to_string(), a.clone())).collect();
    wray::get_all(&registrations)?;
    println!("server knows {} names", wray::get(&server.get_addresses())?.len());
    println!("lookup ray.io -> {:?}", wray::get(&server.lookup("ray.io".to_string()))?);
    println!("lookup nowhere.invalid -> {:?}", wray::get(&server.lookup("nowhere.invalid".to_string()))?);
    Ok(())
}
