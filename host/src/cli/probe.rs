//! `status-router probe livez|readyz|metrics|policy`: an HTTP GET of one
//! endpoint of a running `status-router run`, for exec probes and
//! `kubectl exec` in an image that has no curl. Prints the body; exits 0 iff
//! the answer is 2xx.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Endpoint {
    Livez,
    Readyz,
    Metrics,
    Policy,
}

impl Endpoint {
    /// The server that serves it, as named in the bound-addresses file.
    fn server(self) -> &'static str {
        match self {
            Self::Livez | Self::Readyz => "health",
            Self::Metrics | Self::Policy => "metrics",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Livez => "/livez",
            Self::Readyz => "/readyz",
            Self::Metrics => "/metrics",
            Self::Policy => "/policy",
        }
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// What to ask: livez, readyz (the health server), metrics, policy (the metrics server).
    #[arg(value_enum)]
    endpoint: Endpoint,
    /// The server's address [default: from --bound-addrs-file, else
    /// $STATUS_ROUTER_HEALTH_ADDR or $STATUS_ROUTER_METRICS_ADDR].
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// The file `run --bound-addrs-file` wrote.
    #[arg(long, env = "STATUS_ROUTER_BOUND_ADDRS_FILE")]
    bound_addrs_file: Option<PathBuf>,
}

pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let addr = loopback(address(&args)?);
    let path = args.endpoint.path();
    let (status, body) = get(addr, path).with_context(|| format!("GET http://{addr}{path}"))?;
    print!("{body}");
    if (200..300).contains(&status) {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("status-router probe: GET http://{addr}{path} answered {status}");
        Ok(ExitCode::FAILURE)
    }
}

fn address(args: &ProbeArgs) -> anyhow::Result<SocketAddr> {
    if let Some(addr) = args.addr {
        return Ok(addr);
    }
    let server = args.endpoint.server();
    if let Some(path) = &args.bound_addrs_file {
        return status_router::ops::serve::read_bound_addr(path, server)
            .map_err(anyhow::Error::msg);
    }
    let var = match server {
        "health" => "STATUS_ROUTER_HEALTH_ADDR",
        _ => "STATUS_ROUTER_METRICS_ADDR",
    };
    match std::env::var(var) {
        Ok(value) => value
            .parse()
            .with_context(|| format!("${var} is not an address: {value:?}")),
        Err(_) => bail!("which server? give --addr or --bound-addrs-file (or set ${var})"),
    }
}

/// A server listening on every address is reached on loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// One HTTP/1.0 GET (the server closes the connection after the answer):
/// the status code and the body.
fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).context("cannot connect")?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).context("no answer")?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("not an HTTP answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP status line: {:?}", head.lines().next()))?;
    Ok((status, body.to_string()))
}
