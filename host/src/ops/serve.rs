//! The HTTP endpoints of `status-router run`, with axum: the probes on the
//! health address, and the metrics and the policy on the metrics address.
//! They are two servers so that a Service can expose metrics without the
//! probes, and the kubelet can probe without reaching metrics.
//!
//! - `GET /livez`, `GET /readyz`: 200 `ok`, or 503 with one line per
//!   failing check ([`crate::runtime::health`]);
//! - `GET /metrics`: the Prometheus registry, text format 0.0.4;
//! - `GET /policy`: the active policy and the record of swaps, as JSON.
//!
//! Anything else is a 404 that names the paths there are.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::policy::active::ActivePolicy;
use crate::runtime::health::{Health, Verdict};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write the bound addresses to {path}: {source}")]
    BoundAddrs {
        path: String,
        source: std::io::Error,
    },
}

/// `/livez` and `/readyz`.
pub fn health_routes(health: Arc<Health>) -> Router {
    let live = health.clone();
    Router::new()
        .route(
            "/livez",
            get(move || async move { verdict(live.liveness()) }),
        )
        .route(
            "/readyz",
            get(move || async move { verdict(health.readiness()) }),
        )
        .fallback(|| async { not_found("/livez, /readyz") })
}

/// `/metrics` and `/policy`.
pub fn metrics_routes(registry: Arc<Registry>, policy: Arc<ActivePolicy>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || async move {
                let content_type = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
                let body = crate::runtime::metrics::render(&registry);
                ([(header::CONTENT_TYPE, content_type)], body).into_response()
            }),
        )
        .route(
            "/policy",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    format!("{:#}\n", policy.status()),
                )
                    .into_response()
            }),
        )
        .fallback(|| async { not_found("/metrics, /policy") })
}

fn verdict(v: Verdict) -> Response {
    let status = if v.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CONTENT_TYPE, "text/plain")], v.body).into_response()
}

fn not_found(paths: &'static str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("not found: this server serves GET {paths}\n"),
    )
        .into_response()
}

/// Binds `addr` (port 0: any free port) and serves `routes` on it until the
/// process ends; returns the address bound.
pub async fn start(
    what: &'static str,
    addr: SocketAddr,
    routes: Router,
) -> Result<SocketAddr, ServeError> {
    let bind = |source| ServeError::Bind { what, addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    tracing::info!(addr = %bound, "serving {what}");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, routes).await {
            tracing::error!(error = %e, "the {what} server stopped");
        }
    });
    Ok(bound)
}

/// Writes `name=addr` lines to `path` atomically (a temporary file renamed),
/// so that a reader never sees half a file.
pub fn write_bound_addrs(path: &Path, addrs: &[(&str, SocketAddr)]) -> Result<(), ServeError> {
    let text: String = addrs
        .iter()
        .map(|(name, addr)| format!("{name}={addr}\n"))
        .collect();
    let fail = |source| ServeError::BoundAddrs {
        path: path.display().to_string(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Reads the address of `name` from a file [`write_bound_addrs`] wrote.
pub fn read_bound_addr(path: &Path, name: &str) -> Result<SocketAddr, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .ok_or_else(|| format!("{} has no {name}= line", path.display()))?;
    value
        .trim()
        .parse()
        .map_err(|e| format!("{}: bad address {value:?}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_addrs_round_trip_and_name_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("addrs");
        let health: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        write_bound_addrs(&path, &[("health", health)]).unwrap();
        assert_eq!(read_bound_addr(&path, "health").unwrap(), health);
        let e = read_bound_addr(&path, "metrics").unwrap_err();
        assert!(e.contains("no metrics= line"), "{e}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
