//! Installing CustomResourceDefinitions and waiting until the server serves them.
//!
//! Server-side apply, as `kubectl apply --server-side` installs them: tests of one binary
//! install the same CRDs concurrently, and an apply of the same content never conflicts.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// Time allowed for a CRD to become Established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Parses every CRD in a multi-document YAML string (empty documents are skipped).
pub fn parse_crds(yaml: &str, origin: &str) -> Result<Vec<CustomResourceDefinition>, Error> {
    parse_documents(yaml, origin)
}

/// Parses every document of a multi-document YAML string as a `T` (empty
/// documents are skipped); `origin` names the text in errors.
pub fn parse_documents<T: DeserializeOwned>(yaml: &str, origin: &str) -> Result<Vec<T>, Error> {
    let mut documents = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value = serde_yaml::Value::deserialize(doc).map_err(|source| Error::Yaml {
            origin: origin.to_string(),
            source,
        })?;
        if value.is_null() {
            continue;
        }
        let document = serde_yaml::from_value(value).map_err(|source| Error::Yaml {
            origin: origin.to_string(),
            source,
        })?;
        documents.push(document);
    }
    Ok(documents)
}

/// Installs the CRDs of a multi-document YAML string (server-side apply) and
/// waits until each is Established and its resources are served. Returns the CRD names.
pub async fn install_crds(client: &Client, yaml: &str) -> Result<Vec<String>, Error> {
    install_parsed(client, parse_crds(yaml, "<inline YAML>")?).await
}

/// Like [`install_crds`], reading the YAML from files.
pub async fn install_crd_files<P: AsRef<Path>>(
    client: &Client,
    paths: &[P],
) -> Result<Vec<String>, Error> {
    let mut crds = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let yaml = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading CRD file {}", path.display()), e))?;
        crds.extend(parse_crds(&yaml, &path.display().to_string())?);
    }
    install_parsed(client, crds).await
}

async fn install_parsed(
    client: &Client,
    crds: Vec<CustomResourceDefinition>,
) -> Result<Vec<String>, Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply = PatchParams::apply("testenv").force();
    let mut names = Vec::new();
    let mut served = Vec::new();
    for mut crd in crds {
        let name = crd.name_any();
        crd.metadata.resource_version = None;
        crd.metadata.managed_fields = None;
        crd.status = None;
        api.patch(&name, &apply, &Patch::Apply(&crd)).await?;
        served.extend(served_resources(&crd));
        names.push(name);
    }
    let deadline = Instant::now() + ESTABLISH_TIMEOUT;
    for name in &names {
        wait_established(&api, name).await?;
    }
    for (crd, resource) in served {
        wait_served(client, &crd, &resource, deadline).await?;
    }
    Ok(names)
}

/// Every served version of a CRD, as the resource a client lists.
fn served_resources(crd: &CustomResourceDefinition) -> Vec<(String, ApiResource)> {
    let spec = &crd.spec;
    spec.versions
        .iter()
        .filter(|v| v.served)
        .map(|v| {
            let gvk = GroupVersionKind::gvk(&spec.group, &v.name, &spec.names.kind);
            (
                crd.name_any(),
                ApiResource::from_gvk_with_plural(&gvk, &spec.names.plural),
            )
        })
        .collect()
}

/// Lists the resource until the server answers: an Established CRD's storage can still be
/// initialising, and the server then answers `429 storage is (re)initializing`. Clients here
/// do not retry on their own (as the controller's do not), so the wait is explicit.
async fn wait_served(
    client: &Client,
    crd: &str,
    resource: &ApiResource,
    deadline: Instant,
) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if matches!(status.code, 404 | 429 | 503) => {
                if Instant::now() >= deadline {
                    return Err(Error::CrdNotEstablished {
                        name: format!("{crd} (version {} not served)", resource.version),
                        timeout: ESTABLISH_TIMEOUT,
                    });
                }
            }
            Err(other) => return Err(other.into()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) -> Result<(), Error> {
    let deadline = Instant::now() + ESTABLISH_TIMEOUT;
    loop {
        let crd = api.get(name).await?;
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::CrdNotEstablished {
                name: name.to_string(),
                timeout: ESTABLISH_TIMEOUT,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
