//! Raw QUIC (wray's transport settings) and a plain TCP stream over
//! loopback, alternating, in this process: `cargo run --release -p wray-net
//! --example loopback [MiB] [rounds]`. What tuning the transport is judged
//! by; `wray microbenchmark --cluster` reports both next to object transfers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1024);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    for round in 1..=rounds {
        let quic = rt.block_on(wray_net::loopback_throughput(mib << 20))? / 1e9;
        let tcp = rt.block_on(wray_net::tcp_loopback_throughput(mib << 20))? / 1e9;
        println!(
            "round {round}: {mib} MiB, QUIC {quic:.2} GB/s, TCP {tcp:.2} GB/s, QUIC/TCP {:.0}%",
            100.0 * quic / tcp
        );
    }
    Ok(())
}
