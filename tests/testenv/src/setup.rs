//! Everything a control plane needs on disk before its processes start: where the binaries
//! are, free loopback ports, TLS and service-account keys, the token file and the kubeconfig.
//!
//! Why generated here: kube-apiserver 1.20 only serves TLS, so each run makes a throw-away CA
//! and a serving certificate for 127.0.0.1 (with `rcgen`, no `openssl` CLI needed) and an admin
//! bearer token, and writes a kubeconfig (contexts `wds` and `its`) that trusts that CA.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::Error;

/// Versions of the cached binaries; also the cache key (keep in sync with
/// `scripts/build-control-plane.sh`).
pub const CACHE_KEY: &str = "k8s-1.20.2-etcd-3.4.23";

/// Env var naming a directory with `etcd` and `kube-apiserver`, overriding the cache.
pub const BIN_ENV: &str = "STATUS_ROUTER_CONTROL_PLANE_BIN";

/// The directory the build script caches the binaries in.
pub fn default_bin_dir() -> PathBuf {
    let root = std::env::var_os("STATUS_ROUTER_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("status-router"))
        })
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/status-router")))
        .unwrap_or_else(|| PathBuf::from(".cache/status-router"));
    root.join("control-plane").join(CACHE_KEY).join("bin")
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
    // 1.20 reads the verification key only from a public key (or RSA/EC) PEM, not PKCS#8.
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
    let ca = creds.ca_cert.display().to_string();
    let clusters: Vec<_> = servers
        .iter()
        .map(|(name, url)| {
            serde_json::json!({"name": name, "cluster": {"server": url, "certificate-authority": ca}})
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
