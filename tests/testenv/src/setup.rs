//! Everything a control plane needs on disk before its processes start: where the binaries
//! are, free loopback ports, TLS and service-account keys, the token file and the kubeconfig.
//!
//! Why generated here: kube-apiserver only serves TLS, so each run makes a throw-away CA
//! and a serving certificate for 127.0.0.1 (with `rcgen`, no `openssl` CLI needed) and an admin
//! bearer token, and writes a kubeconfig (contexts `wds` and `its`) that trusts that CA.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::Error;

/// Versions of the cached binaries; also the cache key (keep in sync with
/// `scripts/build-control-plane.sh`).
pub const CACHE_KEY: &str = "k8s-1.32.13-etcd-3.5.16";

/// Env var naming a directory with `etcd` and `kube-apiserver`, overriding the cache.
pub const BIN_ENV: &str = "STATUS_ROUTER_CONTROL_PLANE_BIN";

/// The directory the build script caches the binaries in.
pub fn default_bin_dir() -> PathBuf {
    cache_root()
        .join("control-plane")
        .join(CACHE_KEY)
        .join("bin")
}

/// The project's cache outside the clone, as the build scripts compute it:
/// `$STATUS_ROUTER_CACHE_DIR`, else `$XDG_CACHE_HOME/status-router`, else
/// `~/.cache/status-router`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("STATUS_ROUTER_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("status-router"))
        })
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/status-router")))
        .unwrap_or_else(|| PathBuf::from(".cache/status-router"))
}

/// Finds the binaries: `$STATUS_ROUTER_CONTROL_PLANE_BIN`, else the build script's cache.
pub fn find_binaries() -> Result<PathBuf, Error> {
    let dir = std::env::var_os(BIN_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(default_bin_dir);
    let missing: Vec<&str> = ["etcd", "kube-apiserver"]
        .into_iter()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(Error::BinariesMissing {
            dir,
            missing: missing.join(", "),
        })
    }
}

/// Asks the OS for `n` distinct free loopback ports (all held open until all are chosen).
pub fn free_ports(n: usize) -> Result<Vec<u16>, Error> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::io("binding a free loopback port", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::io("reading a bound port", e))
}

/// Files written by [`write_credentials`].
#[derive(Clone, Debug)]
pub struct Credentials {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    pub token_file: PathBuf,
    pub token: String,
}

fn write(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// A random hex string from std's randomly keyed hasher (enough for a loopback-only token).
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..4)
        .map(|_| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// Generates the CA, the serving certificate for 127.0.0.1, the service-account key and the
/// token file (one admin token in group `system:masters`) into `dir`.
pub fn write_credentials(dir: &Path) -> Result<Credentials, Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "status-router testenv CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let serving_key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let serving = params.signed_by(&serving_key, &ca)?;

    let creds = Credentials {
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("serving.crt"),
        serving_key: dir.join("serving.key"),
        sa_key: dir.join("service-account.key"),
        sa_pub: dir.join("service-account.pub"),
        token_file: dir.join("tokens.csv"),
        token: random_hex(),
    };
    write(&creds.ca_cert, &ca.pem())?;
    write(&creds.serving_cert, &serving.pem())?;
    write(&creds.serving_key, &serving_key.serialize_pem())?;
    let sa_key = KeyPair::generate()?;
    write(&creds.sa_key, &sa_key.serialize_pem())?;
    write(&creds.sa_pub, &sa_key.public_key_pem())?;
    write(
        &creds.token_file,
        &format!(
            "{},testenv-admin,testenv-admin,\"system:masters\"\n",
            creds.token
        ),
    )?;
    Ok(creds)
}

/// Writes a kubeconfig with one cluster, one context per `(name, url)` and a shared admin
/// user; the first context is the current one.
pub fn write_kubeconfig(
    path: &Path,
    creds: &Credentials,
    servers: &[(&str, &str)],
) -> Result<(), Error> {
    // Embedded (not a path) so a copy of the kubeconfig works anywhere.
    let ca_pem = std::fs::read(&creds.ca_cert)
        .map_err(|e| Error::io(format!("reading {}", creds.ca_cert.display()), e))?;
    let ca = base64(&ca_pem);
    let clusters: Vec<_> = servers
        .iter()
        .map(|(name, url)| {
            serde_json::json!({"name": name, "cluster": {"server": url, "certificate-authority-data": ca}})
        })
        .collect();
    let contexts: Vec<_> = servers
        .iter()
        .map(|(name, _)| {
            serde_json::json!({"name": name, "context": {"cluster": name, "user": "testenv-admin"}})
        })
        .collect();
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "contexts": contexts,
        "current-context": servers.first().map(|s| s.0).unwrap_or_default(),
        "users": [{"name": "testenv-admin", "user": {"token": creds.token}}],
        "preferences": {},
    });
    let yaml = serde_yaml::to_string(&config).map_err(|e| Error::Yaml {
        origin: path.display().to_string(),
        source: e,
    })?;
    write(path, &yaml)
}

/// Standard base64 with padding (kubeconfig `*-data` fields).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_rfc4648_vectors() {
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foobar", "Zm9vYmFy"),
    ];
    for (plain, encoded) in cases {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
}

/// Arguments of the single-member etcd (plain HTTP on loopback, data in `dir/etcd`).
pub fn etcd_args(dir: &Path, client_url: &str, peer_port: u16) -> Vec<String> {
    let peer = format!("http://127.0.0.1:{peer_port}");
    vec![
        "--name=testenv".to_string(),
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=testenv={peer}"),
        "--initial-cluster-state=new".to_string(),
        "--logger=zap".to_string(),
        "--log-level=warn".to_string(),
        // 8 GiB, not the default 2: the controller bench at N = 100,000 writes
        // over a million revisions, and the API servers compact only every
        // 5 minutes (the file is sparse: only what is written takes disk).
        "--quota-backend-bytes=8589934592".to_string(),
    ]
}

/// Arguments of one kube-apiserver: TLS on `url`'s loopback port, token auth, service-account
/// tokens (the caller adds `--authorization-mode`),
/// its own etcd prefix `/<context>`.
pub fn apiserver_args(
    dir: &Path,
    etcd_url: &str,
    context: &str,
    url: &str,
    creds: &Credentials,
) -> Vec<String> {
    let port = url.rsplit(':').next().unwrap_or_default();
    let p = |p: &Path| p.display().to_string();
    vec![
        format!("--etcd-servers={etcd_url}"),
        format!("--etcd-prefix=/{context}"),
        "--bind-address=127.0.0.1".to_string(),
        "--advertise-address=127.0.0.1".to_string(),
        format!("--secure-port={port}"),
        format!("--cert-dir={}", p(&dir.join(format!("{}-certs", context)))),
        format!("--tls-cert-file={}", p(&creds.serving_cert)),
        format!("--tls-private-key-file={}", p(&creds.serving_key)),
        format!("--token-auth-file={}", p(&creds.token_file)),
        format!("--service-account-key-file={}", p(&creds.sa_pub)),
        format!("--service-account-signing-key-file={}", p(&creds.sa_key)),
        "--service-account-issuer=https://kubernetes.default.svc".to_string(),
        "--service-cluster-ip-range=10.0.0.0/24".to_string(),
        "--endpoint-reconciler-type=none".to_string(),
        "--profiling=false".to_string(),
    ]
}

/// `GET /health` on etcd's plain-HTTP client port.
pub fn etcd_health(addr: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

/// `POST <path>` with a JSON body on etcd's plain-HTTP client port (its gRPC
/// gateway, `/v3/...`); returns the response body.
pub fn etcd_post(addr: &str, path: &str, body: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!(
            "etcd {path}: {}: {body}",
            head.lines().next().unwrap_or_default()
        )));
    }
    Ok(body.to_string())
}
