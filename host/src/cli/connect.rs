//! Where the WDS and the ITS are: one kubeconfig with a context per space
//! (`--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`, as before), a kubeconfig
//! per space (`--wds-kubeconfig`, `--its-kubeconfig`: what a pod gets from a
//! Secret), or, for the WDS, the cluster the pod runs in. With `--its-name`,
//! as KubeStellar finds them instead: KubeFlex ControlPlanes of the hosting
//! cluster ([`super::kubeflex`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::kubeflex::{Finder, Hosting};
use super::run::parse_seconds;
use status_router::runtime::api;

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The kubeconfig holding the WDS and ITS contexts (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// A kubeconfig for the WDS alone (its current context unless --wds-context).
    #[arg(long, env = "STATUS_ROUTER_WDS_KUBECONFIG")]
    wds_kubeconfig: Option<PathBuf>,
    /// The kubeconfig context of the WDS [default: wds, or the current context of --wds-kubeconfig].
    #[arg(long)]
    wds_context: Option<String>,
    /// A kubeconfig for the ITS alone (its current context unless --its-context).
    #[arg(long, env = "STATUS_ROUTER_ITS_KUBECONFIG")]
    its_kubeconfig: Option<PathBuf>,
    /// The kubeconfig context of the ITS [default: its, or the current context of --its-kubeconfig].
    #[arg(long)]
    its_context: Option<String>,
    /// Find both spaces as KubeStellar does: the KubeFlex ControlPlanes named by --wds-name and
    /// this, in the hosting cluster, and the kubeconfig Secret each one's status.secretRef names.
    #[arg(
        long,
        env = "STATUS_ROUTER_ITS_NAME",
        conflicts_with_all = ["wds_kubeconfig", "its_kubeconfig", "wds_context", "its_context"]
    )]
    its_name: Option<String>,
    /// The hosting cluster's context in the kubeconfig, with --its-name [default: its current
    /// context; in a pod with no kubeconfig named, the pod's own cluster].
    #[arg(long, requires = "its_name")]
    hosting_context: Option<String>,
    /// How long --its-name waits for the ControlPlanes, their status.secretRef, Secrets and keys
    /// (polled every 2s), like `90s` or `5m`.
    #[arg(long, default_value = "5m", value_parser = parse_seconds, requires = "its_name")]
    kubeflex_timeout: Duration,
}

/// Where one space's client comes from.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    /// A kubeconfig file of its own, with a context or its current one.
    File(PathBuf, Option<String>),
    /// A context of the shared kubeconfig.
    Shared(String),
    /// The service account of the pod.
    InCluster,
}

/// The clients of both spaces.
pub struct Spaces {
    pub wds: kube::Client,
    pub its: kube::Client,
    shared: Option<Kubeconfig>,
}

impl ConnectArgs {
    /// `env_kubeconfig`: $KUBECONFIG is set; `in_cluster`: this runs in a pod.
    fn wds_source(&self, env_kubeconfig: bool, in_cluster: bool) -> Source {
        let shared_given = self.kubeconfig.is_some() || env_kubeconfig;
        match &self.wds_kubeconfig {
            Some(path) => Source::File(path.clone(), self.wds_context.clone()),
            None if !shared_given && self.wds_context.is_none() && in_cluster => Source::InCluster,
            None => Source::Shared(self.wds_context.clone().unwrap_or_else(|| "wds".into())),
        }
    }

    fn its_source(&self) -> Source {
        match &self.its_kubeconfig {
            Some(path) => Source::File(path.clone(), self.its_context.clone()),
            None => Source::Shared(self.its_context.clone().unwrap_or_else(|| "its".into())),
        }
    }

    fn read_shared(&self) -> anyhow::Result<Kubeconfig> {
        match &self.kubeconfig {
            Some(path) => Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display())),
            None => Kubeconfig::read().context(
                "cannot read the kubeconfig ($KUBECONFIG or ~/.kube/config); \
                 give --kubeconfig, or --wds-kubeconfig and --its-kubeconfig",
            ),
        }
    }

    /// Connects to both spaces; `wds_name` is the WDS's ControlPlane with `--its-name`.
    pub async fn connect(&self, wds_name: &str) -> anyhow::Result<Spaces> {
        let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
        let env_kubeconfig = std::env::var_os("KUBECONFIG").is_some();
        if let Some(its_name) = &self.its_name {
            let kubeconfig_named = self.kubeconfig.is_some() || env_kubeconfig;
            return self
                .connect_kubeflex([wds_name, its_name], kubeconfig_named, in_cluster)
                .await;
        }
        let sources = [
            ("WDS", self.wds_source(env_kubeconfig, in_cluster)),
            ("ITS", self.its_source()),
        ];
        let shared = if sources.iter().any(|(_, s)| matches!(s, Source::Shared(_))) {
            Some(self.read_shared()?)
        } else {
            None
        };
        let mut clients = Vec::new();
        for (space, source) in sources {
            let config = match &source {
                Source::File(path, context) => {
                    let kubeconfig = Kubeconfig::read_from(path).with_context(|| {
                        format!("cannot read the {space} kubeconfig {}", path.display())
                    })?;
                    config(kubeconfig, context.clone()).await
                }
                Source::Shared(context) => {
                    config(shared.clone().expect("read above"), Some(context.clone())).await
                }
                Source::InCluster => kube::Config::incluster().map_err(anyhow::Error::from),
            }
            .with_context(|| format!("the {space} connection ({source:?})"))?;
            tracing::info!(space, url = %config.cluster_url, "connecting");
            clients.push(api::client(config).with_context(|| format!("a client for the {space}"))?);
        }
        let its = clients.pop().expect("two clients");
        let wds = clients.pop().expect("two clients");
        Ok(Spaces { wds, its, shared })
    }

    /// Connects to the spaces of the KubeFlex ControlPlanes `[wds, its]` of the hosting cluster.
    async fn connect_kubeflex(
        &self,
        [wds_name, its_name]: [&str; 2],
        kubeconfig_named: bool,
        in_pod: bool,
    ) -> anyhow::Result<Spaces> {
        let hosting = Hosting::choose(self.hosting_context.clone(), kubeconfig_named, in_pod);
        let (config, shared) = match &hosting {
            Hosting::InCluster => (
                kube::Config::incluster().context("the hosting cluster (in-cluster config)")?,
                None,
            ),
            Hosting::Kubeconfig(context) => {
                let shared = match &self.kubeconfig {
                    Some(path) => Kubeconfig::read_from(path)
                        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?,
                    None => Kubeconfig::read().context(
                        "cannot read the hosting cluster's kubeconfig ($KUBECONFIG or \
                         ~/.kube/config); give --kubeconfig",
                    )?,
                };
                let config = config(shared.clone(), context.clone())
                    .await
                    .context("the hosting cluster")?;
                (config, Some(shared))
            }
        };
        tracing::info!(
            url = %config.cluster_url,
            wds = wds_name,
            its = its_name,
            "finding the spaces through KubeFlex ControlPlanes of the hosting cluster"
        );
        let finder = Finder {
            hosting: api::client(config).context("a client for the hosting cluster")?,
            in_pod,
            timeout: self.kubeflex_timeout,
        };
        let (wds, its) = tokio::try_join!(
            finder.config("WDS", wds_name),
            finder.config("ITS", its_name)
        )?;
        let client = |space: &str, config: kube::Config| {
            tracing::info!(space, url = %config.cluster_url, "connecting");
            api::client(config).with_context(|| format!("a client for the {space}"))
        };
        Ok(Spaces {
            wds: client("WDS", wds)?,
            its: client("ITS", its)?,
            shared,
        })
    }
}

impl Spaces {
    /// A client for a context of the shared kubeconfig (`--policy-context`).
    pub async fn context(&self, context: &str) -> anyhow::Result<kube::Client> {
        let shared = self.shared.clone().with_context(|| {
            format!("--policy-context {context:?} needs the shared kubeconfig (--kubeconfig)")
        })?;
        let config = config(shared, Some(context.to_string())).await?;
        api::client(config).with_context(|| format!("client for context {context:?}"))
    }
}

async fn config(kubeconfig: Kubeconfig, context: Option<String>) -> anyhow::Result<kube::Config> {
    let options = KubeConfigOptions {
        context: context.clone(),
        ..Default::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .with_context(|| match context {
            Some(context) => format!("kubeconfig context {context:?}"),
            None => "the kubeconfig's current context".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        connect: ConnectArgs,
    }

    fn args(argv: &[&str]) -> ConnectArgs {
        Cli::parse_from(std::iter::once("x").chain(argv.iter().copied())).connect
    }

    #[test]
    fn each_space_takes_its_own_kubeconfig_or_a_context_of_the_shared_one() {
        let a = args(&[
            "--wds-kubeconfig",
            "/w",
            "--its-kubeconfig",
            "/i",
            "--its-context",
            "x",
        ]);
        assert_eq!(a.wds_source(true, true), Source::File("/w".into(), None));
        assert_eq!(a.its_source(), Source::File("/i".into(), Some("x".into())));
        let a = args(&["--kubeconfig", "/k"]);
        assert_eq!(
            a.wds_source(false, true),
            Source::Shared("wds".into()),
            "a named kubeconfig wins"
        );
        assert_eq!(a.its_source(), Source::Shared("its".into()));
        let a = args(&["--kubeconfig", "/k", "--wds-context", "w1"]);
        assert_eq!(a.wds_source(false, false), Source::Shared("w1".into()));
    }

    fn try_args(argv: &[&str]) -> Result<ConnectArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("x").chain(argv.iter().copied())).map(|c| c.connect)
    }

    #[test]
    fn its_name_finds_both_spaces_in_the_hosting_clusters_kubeflex_control_planes() {
        let a = args(&["--its-name", "its1"]);
        assert_eq!(a.its_name.as_deref(), Some("its1"));
        assert_eq!(
            a.kubeflex_timeout,
            Duration::from_secs(300),
            "5m, as upstream"
        );
        let a = args(&[
            "--kubeconfig",
            "/k",
            "--its-name",
            "its1",
            "--hosting-context",
            "kind-kubeflex",
            "--kubeflex-timeout",
            "90s",
        ]);
        assert_eq!(a.hosting_context.as_deref(), Some("kind-kubeflex"));
        assert_eq!(a.kubeflex_timeout, Duration::from_secs(90));
    }

    #[test]
    fn its_name_refuses_the_kubeconfig_flags_of_a_space() {
        for flag in [
            "--wds-kubeconfig",
            "--its-kubeconfig",
            "--wds-context",
            "--its-context",
        ] {
            let e = try_args(&["--its-name", "its1", flag, "x"]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{flag}");
            let text = e.to_string();
            assert!(
                text.contains("--its-name") && text.contains(flag),
                "{flag}: {text}"
            );
        }
    }

    #[test]
    fn the_hosting_flags_need_its_name() {
        for argv in [
            &["--hosting-context", "h"][..],
            &["--kubeflex-timeout", "10s"][..],
        ] {
            let e = try_args(argv).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{argv:?}"
            );
            assert!(e.to_string().contains("--its-name"), "{e}");
        }
        assert!(try_args(&["--its-name", "i", "--kubeflex-timeout", "0s"]).is_err());
    }

    #[test]
    fn the_wds_is_the_hosting_cluster_when_no_kubeconfig_is_named() {
        let a = args(&["--its-kubeconfig", "/i"]);
        assert_eq!(a.wds_source(false, true), Source::InCluster);
        assert_eq!(
            a.wds_source(true, true),
            Source::Shared("wds".into()),
            "$KUBECONFIG wins"
        );
        assert_eq!(
            a.wds_source(false, false),
            Source::Shared("wds".into()),
            "outside a pod: ~/.kube/config"
        );
    }
}
