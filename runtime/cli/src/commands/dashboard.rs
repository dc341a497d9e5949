//! The dashboard flags `wray start --head` and `wray run --dashboard`
//! share, and starting it.

use crate::Failure;
use clap::Args;
use std::net::{IpAddr, SocketAddr};
use wray_dashboard::{DEFAULT_PORT, Dashboard, DashboardConfig};

/// Where the dashboard listens.
#[derive(Args, Clone, Debug)]
pub struct DashboardAddr {
    /// The address the dashboard listens on. Loopback unless told
    /// otherwise; from any other address it asks for the cluster token.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub dashboard_host: IpAddr,

    /// The dashboard's port (0: any free port). Default 8265; if that one
    /// is taken the node starts without a dashboard and says so, while a
    /// port given here that is taken is an error.
    #[arg(long, value_name = "PORT")]
    pub dashboard_port: Option<u16>,
}

impl DashboardAddr {
    /// The flags as `wray start` passes them to its background process.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--dashboard-host".to_string(), self.dashboard_host.to_string()];
        if let Some(p) = self.dashboard_port {
            args.extend(["--dashboard-port".to_string(), p.to_string()]);
        }
        args
    }

    /// Starts the dashboard of `node` (inside the node's runtime).
    pub fn start(&self, node: &wray_runtime::Node, config: DashboardConfig) -> Result<Option<Dashboard>, Failure> {
        let port = self.dashboard_port.unwrap_or(DEFAULT_PORT);
        match Dashboard::bind(SocketAddr::new(self.dashboard_host, port), node.clone(), config) {
            Ok(d) => Ok(Some(d)),
            Err(e) if self.dashboard_port.is_none() => {
                eprintln!("wray: no dashboard: {e} (choose another with --dashboard-port)");
                Ok(None)
            }
            Err(e) => Err(Failure::Usage(e.into())),
        }
    }
}
